// Reduce benchmark: a row sum over the hidden dim (block rows), a column sum
// over the tokens (columns strategy, as a bias gradient), and the f64 sum of
// squares of a whole Llama-3 weight (many chunks per output, as a gradient
// norm), bf16 and f32.
//
//   bazel run -c opt //kernels/cuda:reduce_bench
//
// GB/s counts the input once (outputs and partials are negligible).
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/bench_util.h"
#include "kernels/cuda/reduce.h"

namespace loom::cuda {
namespace {

void BM_Reduce(benchmark::State& state, ReduceOp op, DType dtype, int64_t n, int64_t d,
               std::vector<bool> reduce, DType out_dtype) {
  bench::DeviceBuffer x(size_t(n * d) * SizeOf(dtype)), out(size_t(std::max(n, d)) * 8);
  if (!x.ok() || !out.ok()) {
    state.SkipWithError("cudaMalloc failed (out of device memory?)");
    return;
  }
  x.Fill(dtype, 1);
  const ReduceProblem p{.op = op,
                        .sizes = {n, d},
                        .reduce_dim = reduce,
                        .x = x.get(),
                        .x_dtype = dtype,
                        .x_strides = {d, 1},
                        .out = out.get(),
                        .out_dtype = out_dtype};
  absl::StatusOr<size_t> bytes = ReduceWorkspaceBytes(p);
  if (!bytes.ok()) {
    state.SkipWithError(std::string(bytes.status().message()).c_str());
    return;
  }
  bench::DeviceBuffer workspace(*bytes);
  const double s =
      bench::TimeLaunches(state, [&] { return LaunchReduce(p, workspace.get(), nullptr); });
  bench::ReportBytes(state, double(n * d) * double(SizeOf(dtype)), s);
}

void Register() {
  for (DType dtype : {DType::kBF16, DType::kF32}) {
    const std::string dt(DTypeName(dtype));
    for (int64_t n : {4096, 16384}) {
      benchmark::RegisterBenchmark(absl::StrCat("Reduce/row_sum/", dt, "/N:", n, "/D:4096").c_str(),
                                   BM_Reduce, ReduceOp::kSum, dtype, n, 4096,
                                   std::vector<bool>{false, true}, DType::kF32)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(
          absl::StrCat("Reduce/column_sum/", dt, "/N:", n, "/D:4096").c_str(), BM_Reduce,
          ReduceOp::kSum, dtype, n, 4096, std::vector<bool>{true, false}, DType::kF32)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
    // A gate_proj weight of 8B (14336 x 4096) and of 70B (28672 x 8192).
    for (const auto& [rows, cols] : {std::pair{14336, 4096}, std::pair{28672, 8192}}) {
      benchmark::RegisterBenchmark(
          absl::StrCat("Reduce/sum_squares_all/", dt, "/", rows, "x", cols).c_str(), BM_Reduce,
          ReduceOp::kSumSquares, dtype, rows, cols, std::vector<bool>{true, true}, DType::kF64)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace loom::cuda

int main(int argc, char** argv) {
  loom::cuda::Register();
  return loom::cuda::bench::BenchMain(argc, argv, "reduce_bench");
}
