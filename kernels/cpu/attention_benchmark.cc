// Throughput of the CPU attention kernels, f32, causal, B = 1, H = 8 query
// heads, E = 64, with G = 8 (multi-head) and G = 2 (grouped-query) kv heads.
// Reports GFLOP/s, counting 4*T*S*E*H flops for a full forward (half for
// causal) and 2.5x the forward for the backward (the FlashAttention-2
// convention; this kernel recomputes P and dP in both backward passes, so it
// does more work than it is credited for), and tokens/s. Kernels are called
// through the Backend with preallocated outputs.
//
//   bazel run //kernels/cpu:attention_benchmark
#include <cmath>

#include "benchmark/benchmark.h"
#include "runtime/backend.h"
#include "runtime/ops/random.h"

namespace loom {
namespace {

constexpr int64_t kHeads = 8;
constexpr int64_t kHeadDim = 64;

struct Problem {
  Tensor q, k, v, out, lse, gout, gq, gk, gv;
  AttentionParams params;
};

Problem MakeProblem(int64_t t, int64_t kv_heads) {
  Problem p;
  p.q = RandNormal({1, t, kHeads, kHeadDim}, 0.0, 1.0);
  p.k = RandNormal({1, t, kv_heads, kHeadDim}, 0.0, 1.0);
  p.v = RandNormal({1, t, kv_heads, kHeadDim}, 0.0, 1.0);
  p.gout = RandNormal({1, t, kHeads, kHeadDim}, 0.0, 1.0);
  p.out = Tensor::Zeros({1, t, kHeads, kHeadDim}, DType::kF32);
  p.lse = Tensor::Zeros({1, kHeads, t}, DType::kF32);
  p.gq = Tensor::Zeros(p.q.sizes(), DType::kF32);
  p.gk = Tensor::Zeros(p.k.sizes(), DType::kF32);
  p.gv = Tensor::Zeros(p.v.sizes(), DType::kF32);
  p.params.causal = true;
  p.params.scale = 1.0 / std::sqrt(double(kHeadDim));
  return p;
}

double CausalForwardFlops(int64_t t) { return 4.0 * double(t) * double(t) * kHeadDim * kHeads / 2; }

void Report(benchmark::State& state, double flops_per_iteration, int64_t tokens) {
  const double n = double(state.iterations());
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops_per_iteration * n / 1e9, benchmark::Counter::kIsRate);
  state.counters["tokens/s"] = benchmark::Counter(double(tokens) * n, benchmark::Counter::kIsRate);
}

// Args: T (= S), G.
void BM_AttentionForward(benchmark::State& state) {
  const int64_t t = state.range(0);
  Problem p = MakeProblem(t, state.range(1));
  Backend& cpu = GetBackend(Device::CPU());
  for (auto _ : state) cpu.AttentionForward(p.q, p.k, p.v, p.params, p.out, p.lse);
  Report(state, CausalForwardFlops(t), t);
}

void BM_AttentionForwardBackward(benchmark::State& state) {
  const int64_t t = state.range(0);
  Problem p = MakeProblem(t, state.range(1));
  Backend& cpu = GetBackend(Device::CPU());
  for (auto _ : state) {
    cpu.AttentionForward(p.q, p.k, p.v, p.params, p.out, p.lse);
    cpu.AttentionBackward(p.q, p.k, p.v, p.out, p.lse, p.gout, p.params, p.gq, p.gk, p.gv);
  }
  Report(state, 3.5 * CausalForwardFlops(t), t);
}

void Shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"T", "G"});
  for (int64_t g : {8, 2}) {
    for (int64_t t : {256, 512, 1024, 2048}) b->Args({t, g});
  }
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_AttentionForward)->Apply(Shapes);
BENCHMARK(BM_AttentionForwardBackward)->Apply(Shapes);

}  // namespace
}  // namespace loom

BENCHMARK_MAIN();
