// Softmax benchmark, bf16: short rows (a warp each; attention-score-like
// [32768, 1024]) and long rows (a block each; [4096, 32768]), forward and
// backward.
//
//   bazel run -c opt //kernels/cuda:softmax_bench
//
// GB/s counts every operand once (forward: x, out; backward: y, gy, gx).
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/bench_util.h"
#include "kernels/cuda/softmax.h"

namespace loom::cuda {
namespace {

void BM_Softmax(benchmark::State& state, int64_t rows, int64_t cols, bool backward) {
  const size_t bytes = size_t(rows * cols) * 2;
  bench::DeviceBuffer x(bytes), gy(bytes), out(bytes);
  if (!x.ok() || !gy.ok() || !out.ok()) {
    state.SkipWithError("cudaMalloc failed (out of device memory?)");
    return;
  }
  x.Fill(DType::kBF16, 1);
  gy.Fill(DType::kBF16, 2);
  double s = 0;
  if (backward) {
    s = bench::TimeLaunches(state, [&] {
      return LaunchSoftmaxBackward(DType::kBF16, rows, cols, x.get(), gy.get(), false, out.get(),
                                   nullptr);
    });
  } else {
    s = bench::TimeLaunches(state, [&] {
      return LaunchSoftmax(DType::kBF16, rows, cols, x.get(), false, out.get(), nullptr);
    });
  }
  bench::ReportBytes(state, (backward ? 3.0 : 2.0) * double(bytes), s);
}

void Register() {
  for (const auto& [rows, cols] : {std::pair{32768, 1024}, std::pair{4096, 32768}}) {
    for (bool backward : {false, true}) {
      const std::string name =
          absl::StrCat("Softmax/", backward ? "bwd" : "fwd", "/rows:", rows, "/cols:", cols);
      benchmark::RegisterBenchmark(name.c_str(), BM_Softmax, rows, cols, backward)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace loom::cuda

int main(int argc, char** argv) {
  loom::cuda::Register();
  return loom::cuda::bench::BenchMain(argc, argv, "softmax_bench");
}
