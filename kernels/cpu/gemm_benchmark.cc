// GEMM throughput on the CPU: raw OpenBLAS sgemm (its own threads) against
// Loom's Backend::Gemm (f32 and bf16), and the MatMul op with allocation.
//
//   bazel run //kernels/cpu:gemm_benchmark -- --benchmark_min_time=0.2
//
// Args are {M, N, K, trans_b}; trans_b shapes are Llama projections
// x [tokens, in] @ W[out, in]^T. The GFLOP/s counter counts 2*M*N*K per iteration.
#include <cblas.h>

#include <cstdint>

#include "benchmark/benchmark.h"
#include "runtime/backend.h"
#include "runtime/ops/matmul.h"
#include "runtime/ops/shape.h"
#include "runtime/parallel.h"

namespace loom {
namespace {

struct Problem {
  int64_t m, n, k;
  bool trans_b;
  explicit Problem(const benchmark::State& state)
      : m(state.range(0)), n(state.range(1)), k(state.range(2)), trans_b(state.range(3) != 0) {}
  Dims a_dims() const { return {m, k}; }
  Dims b_dims() const { return trans_b ? Dims{n, k} : Dims{k, n}; }
};

// Values in [-1, 1) from a fixed LCG: no denormals, no NaN.
Tensor Filled(DimsRef sizes, DType dtype, uint64_t seed) {
  Tensor t = Tensor::Empty(sizes, DType::kF32);
  float* p = t.data<float>();
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = float(int64_t(s >> 40) - (int64_t{1} << 23)) / float(int64_t{1} << 23);
  }
  return Cast(t, dtype);
}

Tensor As3d(const Tensor& t) { return Reshape(t, {1, t.size(0), t.size(1)}); }

void SetFlops(benchmark::State& state, const Problem& p) {
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * double(p.m) * double(p.n) * double(p.k) * double(state.iterations()) * 1e-9,
      benchmark::Counter::kIsRate);
}

// (a) OpenBLAS on preallocated buffers with its own thread pool.
void BM_RawSgemm(benchmark::State& state) {
  const Problem p(state);
  const Tensor a = Filled(p.a_dims(), DType::kF32, 1), b = Filled(p.b_dims(), DType::kF32, 2);
  const Tensor c = Tensor::Empty({p.m, p.n}, DType::kF32);
  openblas_set_num_threads(NumThreads());
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, p.trans_b ? CblasTrans : CblasNoTrans, int(p.m),
                int(p.n), int(p.k), 1.0f, a.data<float>(), int(p.k), b.data<float>(),
                int(b.size(1)), 0.0f, c.data<float>(), int(p.n));
    benchmark::DoNotOptimize(c.data<float>());
  }
  SetFlops(state, p);
}

// (b), (d) Backend::Gemm on preallocated tensors.
void GemmBench(benchmark::State& state, DType dtype) {
  const Problem p(state);
  const Tensor a = As3d(Filled(p.a_dims(), dtype, 1)), b = As3d(Filled(p.b_dims(), dtype, 2));
  const Tensor c = Tensor::Empty({1, p.m, p.n}, dtype);
  Backend& backend = GetBackend(Device::CPU());
  for (auto _ : state) {
    backend.Gemm(a, false, b, p.trans_b, 1.0, 0.0, c);
    benchmark::DoNotOptimize(c.raw_data());
  }
  SetFlops(state, p);
}
void BM_GemmF32(benchmark::State& state) { GemmBench(state, DType::kF32); }
void BM_GemmBF16(benchmark::State& state) { GemmBench(state, DType::kBF16); }

// (c) The MatMul op, allocating its output; trans_b passes W^T as a view.
void BM_MatMulOpF32(benchmark::State& state) {
  const Problem p(state);
  const Tensor a = Filled(p.a_dims(), DType::kF32, 1), b = Filled(p.b_dims(), DType::kF32, 2);
  const Tensor bt = p.trans_b ? Transpose(b, 0, 1) : b;
  for (auto _ : state) {
    Tensor c = MatMul(a, bt);
    benchmark::DoNotOptimize(c.raw_data());
  }
  SetFlops(state, p);
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {256, 512, 1024, 2048}) b->Args({n, n, n, 0});
  // Llama-style projections, 512 tokens, hidden 2048, MLP 5632.
  b->Args({512, 2048, 2048, 1});  // q/o projection
  b->Args({512, 5632, 2048, 1});  // gate/up projection
  b->Args({512, 2048, 5632, 1});  // down projection
  b->ArgNames({"M", "N", "K", "trans_b"})->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_RawSgemm)->Apply(Shapes);
BENCHMARK(BM_GemmF32)->Apply(Shapes);
BENCHMARK(BM_MatMulOpF32)->Apply(Shapes);
BENCHMARK(BM_GemmBF16)->Apply(Shapes);

}  // namespace
}  // namespace loom

BENCHMARK_MAIN();
