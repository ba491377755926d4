// RMSNorm benchmark: forward and backward over Llama-3 8B / 70B hidden sizes
// (4096 / 8192) at 4096 and 16384 tokens, bf16.
//
//   bazel run -c opt //kernels/cuda:norm_bench
//
// Memory-bound: GB/s counts the bytes each launch must move at least once
// (forward: x, y, w, rstd; backward: gy, x, gx, w, rstd, the per-block weight
// partials written and read back, gw) against the DRAM peak.
#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/bench_util.h"
#include "kernels/cuda/rmsnorm.h"

namespace loom::cuda {
namespace {

void BM_RmsNorm(benchmark::State& state, int64_t rows, int64_t dim, bool backward) {
  const size_t mat = size_t(rows * dim) * 2;
  bench::DeviceBuffer x(mat), y(mat), w(size_t(dim) * 2), rstd(size_t(rows) * 4),
      ws(RmsNormBackwardWorkspaceBytes(DType::kBF16, rows, dim)), gw(size_t(dim) * 2);
  if (!x.ok() || !y.ok() || !ws.ok()) {
    state.SkipWithError("cudaMalloc failed (out of device memory?)");
    return;
  }
  x.Fill(DType::kBF16, 1);
  w.Fill(DType::kBF16, 2);
  y.Fill(DType::kBF16, 3);
  const RmsNormForwardArgs f{.dtype = DType::kBF16,
                             .rows = rows,
                             .dim = dim,
                             .x = x.get(),
                             .x_stride = dim,
                             .weight = w.get(),
                             .eps = 1e-5,
                             .y = y.get(),
                             .y_stride = dim,
                             .rstd = rstd.get()};
  if (!backward) {
    const double s = bench::TimeLaunches(state, [&] { return LaunchRmsNormForward(f, nullptr); });
    bench::ReportBytes(state, 2.0 * double(mat) + double(dim) * 2 + double(rows) * 4, s);
    return;
  }
  if (absl::Status s = LaunchRmsNormForward(f, nullptr); !s.ok()) {
    state.SkipWithError(std::string(s.message()).c_str());
    return;
  }
  // gy = y (any values do); gx written in place over it.
  const RmsNormBackwardArgs b{.dtype = DType::kBF16,
                              .rows = rows,
                              .dim = dim,
                              .gy = y.get(),
                              .gy_stride = dim,
                              .x = x.get(),
                              .x_stride = dim,
                              .weight = w.get(),
                              .rstd = rstd.get(),
                              .gx = y.get(),
                              .gx_stride = dim,
                              .gw = gw.get(),
                              .workspace = ws.get()};
  const double s = bench::TimeLaunches(state, [&] { return LaunchRmsNormBackward(b, nullptr); });
  const double partials = double(RmsNormBackwardWorkspaceBytes(DType::kBF16, rows, dim));
  bench::ReportBytes(state,
                     3.0 * double(mat) + 2 * partials + 4.0 * double(dim) + 4.0 * double(rows), s);
}

void Register() {
  for (int64_t dim : {4096, 8192}) {
    for (int64_t rows : {4096, 16384}) {
      for (bool backward : {false, true}) {
        const std::string name =
            absl::StrCat("RmsNorm/", backward ? "bwd" : "fwd", "/D:", dim, "/N:", rows);
        benchmark::RegisterBenchmark(name.c_str(), BM_RmsNorm, rows, dim, backward)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

}  // namespace
}  // namespace loom::cuda

int main(int argc, char** argv) {
  loom::cuda::Register();
  return loom::cuda::bench::BenchMain(argc, argv, "norm_bench");
}
