// SIMT GEMM for f32 and f64 inputs (no tensor cores): 64 x 64 block tiles,
// 256 threads each computing a 4 x 4 patch, K in steps of 16 through
// double-buffered shared memory. Operands are read through their strides, so
// transposes and any M, N, K need no special cases.
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/gemm_internal.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE::gemm_internal {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16, kThreads = 256;

template <typename T>
struct SimtArgs {
  const T* a;
  const T* b;
  T* out;
  int64_t m, n, k;
  // Element strides of the logical A [M, K] and B [K, N] (transposes folded in).
  int64_t a_row, a_col, b_row, b_col;
  int64_t ldo;
  int64_t batch_stride_a, batch_stride_b, batch_stride_out;
  T alpha, beta;
};

template <typename T>
__global__ void __launch_bounds__(kThreads) SimtGemmKernel(SimtArgs<T> p) {
  // [buffer][k][m] and [buffer][k][n]; +1 column breaks bank conflicts on the
  // transposed stores of A.
  LOOM_SHARED(T, sa, 2 * kBK * (kBM + 1));
  LOOM_SHARED(T, sb, 2 * kBK * kBN);
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;  // 16 x 16 threads, 4 x 4 outputs each
  const int64_t bm = int64_t(blockIdx.y) * kBM, bn = int64_t(blockIdx.x) * kBN;
  const T* a = p.a + int64_t(blockIdx.z) * p.batch_stride_a;
  const T* b = p.b + int64_t(blockIdx.z) * p.batch_stride_b;
  T* out = p.out + int64_t(blockIdx.z) * p.batch_stride_out;

  auto load = [&](int buf, int64_t k0) {
    // 64 x 16 elements of A and 16 x 64 of B: 4 of each per thread.
    for (int i = tid; i < kBM * kBK; i += kThreads) {
      const int mm = i / kBK, kk = i % kBK;
      const int64_t gm = bm + mm, gk = k0 + kk;
      sa[(buf * kBK + kk) * (kBM + 1) + mm] =
          gm < p.m && gk < p.k ? a[gm * p.a_row + gk * p.a_col] : T(0);
    }
    for (int i = tid; i < kBK * kBN; i += kThreads) {
      const int kk = i / kBN, nn = i % kBN;
      const int64_t gk = k0 + kk, gn = bn + nn;
      sb[(buf * kBK + kk) * kBN + nn] =
          gk < p.k && gn < p.n ? b[gk * p.b_row + gn * p.b_col] : T(0);
    }
  };

  T acc[4][4] = {};
  const int k_tiles = int((p.k + kBK - 1) / kBK);
  if (k_tiles > 0) load(0, 0);
  for (int kt = 0; kt < k_tiles; ++kt) {
    __syncthreads();  // buffer kt % 2 is complete; buffer (kt + 1) % 2 is free
    if (kt + 1 < k_tiles) load((kt + 1) % 2, int64_t(kt + 1) * kBK);
    const int buf = kt % 2;
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      T av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = sa[(buf * kBK + kk) * (kBM + 1) + ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = sb[(buf * kBK + kk) * kBN + tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = bm + ty * 4 + i;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t col = bn + tx * 4 + j;
      if (row < p.m && col < p.n) {
        T* o = out + row * p.ldo + col;
        T v = p.alpha * acc[i][j];
        if (p.beta != T(0)) v += p.beta * *o;
        *o = v;
      }
    }
  }
}

template <typename T>
absl::Status Run(const GemmProblem& p, cudaStream_t stream) {
  SimtArgs<T> args{static_cast<const T*>(p.a),
                   static_cast<const T*>(p.b),
                   static_cast<T*>(p.out),
                   p.m,
                   p.n,
                   p.k,
                   p.trans_a ? 1 : p.lda,
                   p.trans_a ? p.lda : 1,
                   p.trans_b ? 1 : p.ldb,
                   p.trans_b ? p.ldb : 1,
                   p.ldo,
                   p.batch_stride_a,
                   p.batch_stride_b,
                   p.batch_stride_out,
                   T(p.alpha),
                   T(p.beta)};
  const LaunchConfig config{.grid = dim3(unsigned((p.n + kBN - 1) / kBN),
                                         unsigned((p.m + kBM - 1) / kBM), unsigned(p.batch)),
                            .block = dim3(kThreads),
                            .stream = stream};
  return Launch<&SimtGemmKernel<T>>(config, args);
}

}  // namespace

absl::Status LaunchSimtGemm(const GemmProblem& p, cudaStream_t stream) {
  if (p.input == DType::kF64) return Run<double>(p, stream);
  return Run<float>(p, stream);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE::gemm_internal
