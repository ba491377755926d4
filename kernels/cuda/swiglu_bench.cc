// SwiGLU benchmark: the Llama-3 8B / 70B MLP activations (intermediate 14336 /
// 28672) at 4096 and 16384 tokens, bf16, reading gate and up as the two halves
// of the fused gate_up projection.
//
//   bazel run -c opt //kernels/cuda:swiglu_bench
//
// GB/s counts every operand once (forward: gate, up, out; backward: gate, up,
// gout, ggate, gup), against the DRAM peak.
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/bench_util.h"
#include "kernels/cuda/swiglu.h"

namespace loom::cuda {
namespace {

void BM_SwiGlu(benchmark::State& state, int64_t rows, int64_t f, bool backward) {
  const size_t half = size_t(rows * f) * 2;
  bench::DeviceBuffer gate_up(2 * half), out(half), grad(2 * half);
  if (!gate_up.ok() || !out.ok() || !grad.ok()) {
    state.SkipWithError("cudaMalloc failed (out of device memory?)");
    return;
  }
  gate_up.Fill(DType::kBF16, 1);
  out.Fill(DType::kBF16, 2);
  char* gu = static_cast<char*>(gate_up.get());
  char* g = static_cast<char*>(grad.get());
  if (!backward) {
    const SwiGluArgs a{.dtype = DType::kBF16,
                       .rows = rows,
                       .cols = f,
                       .gate = gu,
                       .gate_stride = 2 * f,
                       .up = gu + f * 2,
                       .up_stride = 2 * f,
                       .out = out.get(),
                       .out_stride = f};
    const double s = bench::TimeLaunches(state, [&] { return LaunchSwiGluForward(a, nullptr); });
    bench::ReportBytes(state, 3.0 * double(half), s);
    return;
  }
  const SwiGluBackwardArgs a{.dtype = DType::kBF16,
                             .rows = rows,
                             .cols = f,
                             .gate = gu,
                             .gate_stride = 2 * f,
                             .up = gu + f * 2,
                             .up_stride = 2 * f,
                             .gout = out.get(),
                             .gout_stride = f,
                             .ggate = g,
                             .ggate_stride = 2 * f,
                             .gup = g + f * 2,
                             .gup_stride = 2 * f};
  const double s = bench::TimeLaunches(state, [&] { return LaunchSwiGluBackward(a, nullptr); });
  bench::ReportBytes(state, 5.0 * double(half), s);
}

void Register() {
  for (int64_t f : {14336, 28672}) {
    for (int64_t rows : {4096, 16384}) {
      for (bool backward : {false, true}) {
        const std::string name =
            absl::StrCat("SwiGlu/", backward ? "bwd" : "fwd", "/F:", f, "/N:", rows);
        benchmark::RegisterBenchmark(name.c_str(), BM_SwiGlu, rows, f, backward)
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
  return loom::cuda::bench::BenchMain(argc, argv, "swiglu_bench");
}
