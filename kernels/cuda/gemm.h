// Matrix products on CUDA devices, one launcher for every dtype:
//
//   out[b] = alpha * op(A[b]) @ op(B[b]) + beta * out[b]     for b < batch
//
// bf16 and f16 inputs run on tensor cores (mma.sync m16n8k16 fed by ldmatrix
// from a multi-stage cp.async pipeline, f32 accumulation; gemm.cu); f32 and
// f64 inputs run on a SIMT kernel (gemm_simt.cu). Any M, N, K (edges are
// handled), any row strides, and batch strides of 0 for an operand shared by
// every batch. The three products of a linear layer are
//   forward  y  = x @ W^T      (trans_b)
//   backward dx = dy @ W
//            dW += dy^T @ x    (trans_a, beta = 1 into an f32 gradient)
//
//   GemmProblem p{.input = DType::kBF16, .output = DType::kF32, .m = .., ...};
//   LOOM_RETURN_IF_ERROR(LaunchGemm(p, stream));
#ifndef LOOM_KERNELS_CUDA_GEMM_H_
#define LOOM_KERNELS_CUDA_GEMM_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/device/namespace.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

struct GemmProblem {
  DType input = DType::kBF16;  // of A and B
  DType output = DType::kF32;  // f32, or the input dtype
  int64_t batch = 1, m = 0, n = 0, k = 0;
  // A is [M, K] (or [K, M] if trans_a) with row stride lda; batch b at
  // a + b * batch_stride_a elements. Likewise B [K, N] (or [N, K]) and out [M, N].
  const void* a = nullptr;
  int64_t lda = 0, batch_stride_a = 0;
  bool trans_a = false;
  const void* b = nullptr;
  int64_t ldb = 0, batch_stride_b = 0;
  bool trans_b = false;
  void* out = nullptr;
  int64_t ldo = 0, batch_stride_out = 0;
  float alpha = 1.0f;
  float beta = 0.0f;  // 0: out is overwritten (never read, may hold NaN)
};

// Validates `p` (InvalidArgument naming the field) and enqueues the product.
absl::Status LaunchGemm(const GemmProblem& p, cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_GEMM_H_
