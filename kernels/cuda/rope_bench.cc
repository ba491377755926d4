// RoPE benchmark: rotating q (32 / 64 heads) and k (8 heads) of Llama-3 8B /
// 70B, head dim 128, in place, at 4096 and 16384 tokens, bf16.
//
//   bazel run -c opt //kernels/cuda:rope_bench
//
// GB/s counts x read and written once plus the positions, against the DRAM peak.
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/bench_util.h"
#include "kernels/cuda/rope.h"

namespace loom::cuda {
namespace {

void BM_Rope(benchmark::State& state, int64_t tokens, int64_t heads) {
  constexpr int64_t e = 128;
  const size_t bytes = size_t(tokens * heads * e) * 2;
  bench::DeviceBuffer x(bytes), pos(size_t(tokens) * 8), freq(size_t(e / 2) * 4);
  if (!x.ok() || !pos.ok() || !freq.ok()) {
    state.SkipWithError("cudaMalloc failed (out of device memory?)");
    return;
  }
  x.Fill(DType::kBF16, 1);
  freq.Fill(DType::kF32, 2);
  cudaMemset(pos.get(), 0, size_t(tokens) * 8);  // the angle values do not change the cost
  const RopeStrides st{tokens * heads * e, heads * e, e};
  const RopeArgs a{.dtype = DType::kBF16,
                   .batch = 1,
                   .seqlen = tokens,
                   .heads = heads,
                   .head_dim = e,
                   .x = x.get(),
                   .x_strides = st,
                   .out = x.get(),
                   .out_strides = st,
                   .positions = static_cast<const int64_t*>(pos.get()),
                   .inv_freq = freq.get()};
  const double s = bench::TimeLaunches(state, [&] { return LaunchRope(a, nullptr); });
  bench::ReportBytes(state, 2.0 * double(bytes) + double(tokens) * 8, s);
}

void Register() {
  for (int64_t heads : {8, 32, 64}) {
    for (int64_t tokens : {4096, 16384}) {
      const std::string name = absl::StrCat("Rope/H:", heads, "/E:128/N:", tokens);
      benchmark::RegisterBenchmark(name.c_str(), BM_Rope, tokens, heads)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace loom::cuda

int main(int argc, char** argv) {
  loom::cuda::Register();
  return loom::cuda::bench::BenchMain(argc, argv, "rope_bench");
}
