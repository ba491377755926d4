// Throughput of the memory-bound CPU kernels, in GB/s of bytes read plus
// bytes written, against memcpy (one thread and all threads) as the machine's
// bandwidth limit. Kernels are called through the Backend with preallocated
// outputs, so allocation is not measured.
//
//   bazel run //kernels/cpu:elementwise_benchmark -- --benchmark_min_time=0.2
#include <cstring>
#include <vector>

#include "benchmark/benchmark.h"
#include "runtime/backend.h"
#include "runtime/ops/shape.h"
#include "runtime/parallel.h"

namespace loom {
namespace {

constexpr int64_t kRowWidth = 4096;  // D of the row-wise kernels (RMSNorm, softmax)

Backend& Cpu() { return GetBackend(Device::CPU()); }

// Inputs with every page touched, so page faults stay out of the timing.
Tensor Input(DimsRef sizes, DType dtype, double value) { return Tensor::Full(sizes, value, dtype); }
Tensor Output(DimsRef sizes, DType dtype) { return Tensor::Full(sizes, 0.0, dtype); }

void ReportBytes(benchmark::State& state, double bytes_per_iteration) {
  state.counters["GB/s"] = benchmark::Counter(
      bytes_per_iteration * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

void BM_Memcpy(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> src(size_t(n), 1.0f), dst(size_t(n), 0.0f);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), size_t(n) * sizeof(float));
    benchmark::ClobberMemory();
  }
  ReportBytes(state, 2.0 * double(n) * sizeof(float));
}

void BM_MemcpyAllThreads(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> src(size_t(n), 1.0f), dst(size_t(n), 0.0f);
  for (auto _ : state) {
    ParallelFor(n, 1 << 15, [&](int64_t b, int64_t e) {
      std::memcpy(dst.data() + b, src.data() + b, size_t(e - b) * sizeof(float));
    });
    benchmark::ClobberMemory();
  }
  ReportBytes(state, 2.0 * double(n) * sizeof(float));
}

void BM_AddContiguous(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor a = Input({n}, DType::kF32, 1.0), b = Input({n}, DType::kF32, 2.0);
  Tensor out = Output({n}, DType::kF32);
  for (auto _ : state) Cpu().Binary(BinaryOp::kAdd, a, b, out);
  ReportBytes(state, 3.0 * double(n) * sizeof(float));
}

// a [n / D, D] + b [D] (a bias), b broadcast with stride 0 over rows.
void BM_AddBroadcast(benchmark::State& state) {
  const int64_t n = state.range(0), rows = n / kRowWidth;
  Tensor a = Input({rows, kRowWidth}, DType::kF32, 1.0);
  Tensor b = Expand(Input({kRowWidth}, DType::kF32, 2.0), {rows, kRowWidth});
  Tensor out = Output({rows, kRowWidth}, DType::kF32);
  for (auto _ : state) Cpu().Binary(BinaryOp::kAdd, a, b, out);
  ReportBytes(state, (2.0 * double(n) + kRowWidth) * sizeof(float));
}

void BM_Mul(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor a = Input({n}, DType::kF32, 1.5), b = Input({n}, DType::kF32, 2.0);
  Tensor out = Output({n}, DType::kF32);
  for (auto _ : state) Cpu().Binary(BinaryOp::kMul, a, b, out);
  ReportBytes(state, 3.0 * double(n) * sizeof(float));
}

void BM_Silu(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor x = Input({n}, DType::kF32, 0.5), out = Output({n}, DType::kF32);
  for (auto _ : state) Cpu().Unary(UnaryOp::kSilu, x, out);
  ReportBytes(state, 2.0 * double(n) * sizeof(float));
}

void BM_CastF32ToBf16(benchmark::State& state) {
  const int64_t n = state.range(0);
  Tensor x = Input({n}, DType::kF32, 0.5), out = Output({n}, DType::kBF16);
  for (auto _ : state) Cpu().Copy(x, out);
  ReportBytes(state, double(n) * (sizeof(float) + 2));
}

void BM_RmsNormForward(benchmark::State& state) {
  const int64_t n = state.range(0), rows = n / kRowWidth;
  Tensor x = Input({rows, kRowWidth}, DType::kF32, 0.5);
  Tensor w = Input({kRowWidth}, DType::kF32, 1.0);
  Tensor y = Output({rows, kRowWidth}, DType::kF32), rstd = Output({rows}, DType::kF32);
  for (auto _ : state) Cpu().RmsNormForward(x, w, 1e-5, y, rstd);
  ReportBytes(state, (2.0 * double(n) + kRowWidth + double(rows)) * sizeof(float));
}

void BM_SwiGluForward(benchmark::State& state) {
  const int64_t n = state.range(0), rows = n / kRowWidth;
  Tensor gate = Input({rows, kRowWidth}, DType::kF32, 0.5);
  Tensor up = Input({rows, kRowWidth}, DType::kF32, 2.0);
  Tensor out = Output({rows, kRowWidth}, DType::kF32);
  for (auto _ : state) Cpu().SwiGluForward(gate, up, out);
  ReportBytes(state, 3.0 * double(n) * sizeof(float));
}

void BM_SoftmaxForward(benchmark::State& state) {
  const int64_t n = state.range(0), rows = n / kRowWidth;
  Tensor x = Input({rows, kRowWidth}, DType::kF32, 0.5);
  Tensor out = Output({rows, kRowWidth}, DType::kF32);
  for (auto _ : state) Cpu().Softmax(x, /*log=*/false, out);
  ReportBytes(state, 2.0 * double(n) * sizeof(float));
}

#define LOOM_MEMORY_BENCHMARK(fn) BENCHMARK(fn)->Arg(1 << 20)->Arg(1 << 24)->UseRealTime()

LOOM_MEMORY_BENCHMARK(BM_Memcpy);
LOOM_MEMORY_BENCHMARK(BM_MemcpyAllThreads);
LOOM_MEMORY_BENCHMARK(BM_AddContiguous);
LOOM_MEMORY_BENCHMARK(BM_AddBroadcast);
LOOM_MEMORY_BENCHMARK(BM_Mul);
LOOM_MEMORY_BENCHMARK(BM_Silu);
LOOM_MEMORY_BENCHMARK(BM_CastF32ToBf16);
LOOM_MEMORY_BENCHMARK(BM_RmsNormForward);
LOOM_MEMORY_BENCHMARK(BM_SwiGluForward);
LOOM_MEMORY_BENCHMARK(BM_SoftmaxForward);

}  // namespace
}  // namespace loom

BENCHMARK_MAIN();
