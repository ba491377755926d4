// GEMM benchmark: the three products of every linear layer of Llama-3 8B and
// 70B (forward y = x W^T, dgrad dx = dy W, wgrad dW += dy^T x into f32) at
// 4096 and 16384 tokens, bf16, our kernel side by side with cuBLASLt.
//
//   bazel run -c opt //kernels/cuda:gemm_bench -- --benchmark_filter=70B
//
// Counters: TFLOP/s (2 M N K per product) and % of the dense bf16 peak. The
// goal of the kernels issue is >= 90% of cuBLASLt on the large shapes: compare
// the loom and cublaslt rows of the same shape.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/bench_util.h"
#include "kernels/cuda/kernel_select.h"

namespace loom::cuda {
namespace {

struct Linear {
  const char* model;
  const char* name;
  int64_t n, k;  // W is [n, k]: y[M, n] = x[M, k] W^T
};

// hidden 4096 / 8192, intermediate 14336 / 28672, 32 / 64 heads of 128, 8 KV heads, vocab 128256.
const Linear kLinears[] = {
    {"8B", "qkv", (32 + 2 * 8) * 128, 4096},
    {"8B", "o", 4096, 4096},
    {"8B", "gate_up", 2 * 14336, 4096},
    {"8B", "down", 4096, 14336},
    {"8B", "lm_head", 128256, 4096},
    {"70B", "qkv", (64 + 2 * 8) * 128, 8192},
    {"70B", "o", 8192, 8192},
    {"70B", "gate_up", 2 * 28672, 8192},
    {"70B", "down", 8192, 28672},
    {"70B", "lm_head", 128256, 8192},
};

enum class Product { kForward, kDgrad, kWgrad };

void BM_Gemm(benchmark::State& state, Linear l, int64_t tokens, Product product, GemmImpl impl) {
  const int64_t m = tokens;
  bench::DeviceBuffer x(size_t(m * l.k) * 2), w(size_t(l.n * l.k) * 2), y(size_t(m * l.n) * 2),
      wgrad(size_t(l.n * l.k) * 4);
  if (!x.ok() || !w.ok() || !y.ok() || !wgrad.ok()) {
    state.SkipWithError("cudaMalloc failed (out of device memory?)");
    return;
  }
  x.Fill(DType::kBF16, 1);
  w.Fill(DType::kBF16, 2);
  y.Fill(DType::kBF16, 3);
  GemmProblem p{.input = DType::kBF16, .output = DType::kBF16};
  switch (product) {
    case Product::kForward:  // y[M, N] = x[M, K] W[N, K]^T
      p.m = m, p.n = l.n, p.k = l.k;
      p.a = x.get(), p.lda = l.k, p.b = w.get(), p.ldb = l.k, p.trans_b = true;
      p.out = y.get(), p.ldo = l.n;
      break;
    case Product::kDgrad:  // dx[M, K] = dy[M, N] W[N, K]
      p.m = m, p.n = l.k, p.k = l.n;
      p.a = y.get(), p.lda = l.n, p.b = w.get(), p.ldb = l.k;
      p.out = x.get(), p.ldo = l.k;
      break;
    case Product::kWgrad:  // dW[N, K] += dy[M, N]^T x[M, K], f32
      p.m = l.n, p.n = l.k, p.k = m;
      p.a = y.get(), p.lda = l.n, p.trans_a = true, p.b = x.get(), p.ldb = l.k;
      p.output = DType::kF32, p.out = wgrad.get(), p.ldo = l.k, p.beta = 1.0f;
      break;
  }
  const double seconds =
      bench::TimeLaunches(state, [&] { return LaunchGemmWith(impl, p, nullptr); });
  bench::ReportFlops(state, 2.0 * double(p.m) * double(p.n) * double(p.k), seconds);
}

void Register() {
  const char* kProducts[] = {"fwd", "dgrad", "wgrad"};
  for (const Linear& l : kLinears) {
    for (int64_t tokens : {4096, 16384}) {
      for (int pr = 0; pr < 3; ++pr) {
        for (GemmImpl impl : {GemmImpl::kLoom, GemmImpl::kCublasLt}) {
          const std::string name = absl::StrCat("Gemm/", l.model, "/", l.name, "/", kProducts[pr],
                                                "/M:", tokens, "/", GemmImplName(impl));
          benchmark::RegisterBenchmark(name.c_str(), BM_Gemm, l, tokens, Product(pr), impl)
              ->UseManualTime()
              ->Unit(benchmark::kMillisecond);
        }
      }
    }
  }
}

}  // namespace
}  // namespace loom::cuda

int main(int argc, char** argv) {
  loom::cuda::Register();
  return loom::cuda::bench::BenchMain(argc, argv, "gemm_bench");
}
