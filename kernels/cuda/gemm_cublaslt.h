// cuBLASLt GEMM behind the same GemmProblem as our kernels (gemm.h): the
// baseline of the GEMM benchmark and a selectable alternative at run time
// (LOOM_GEMM=cublaslt, see gemm_select.h).
//
//   LOOM_RETURN_IF_ERROR(LaunchGemmCublasLt(problem, stream));
//
// UNVERIFIED ON A GPU: this machine has none, so the cuBLASLt calls have only
// been compiled, linked and reviewed against cublasLt.h and NVIDIA's cuBLASLt
// documentation. What is tested here: argument validation (the same messages
// as LaunchGemm), the clear FailedPrecondition without a device, and
// PlanCublasLtGemm, the pure host translation of a row-major GemmProblem into
// cuBLASLt's column-major terms, by executing plans with a host model of
// cublasLtMatmul and comparing with a row-major reference.
//
// Row-major out[M, N] = op(A) op(B) is column-major out^T[N, M] = op(B)^T op(A)^T,
// so B's memory becomes cuBLASLt's A operand and A's becomes its B, with the
// transposes carried over; no data moves. bf16/f16 inputs compute in f32
// (CUBLAS_COMPUTE_32F) with f32 or 16-bit outputs, f32 inputs in f32 (no
// TF32), f64 in f64. A batch whose shared B operand (batch stride 0) meets a
// contiguous A and out is folded into one taller product.
#ifndef LOOM_KERNELS_CUDA_GEMM_CUBLASLT_H_
#define LOOM_KERNELS_CUDA_GEMM_CUBLASLT_H_

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/gemm.h"

namespace loom::cuda {

// One operand of cublasLtMatmul as stored: a column-major rows x cols matrix
// with leading dimension ld, batch_stride elements between batches.
struct CublasLtMatrix {
  cudaDataType_t type = CUDA_R_32F;
  uint64_t rows = 0, cols = 0;
  int64_t ld = 0;
  int64_t batch_stride = 0;
  const void* data = nullptr;
};

// D = alpha * op(A) op(B) + beta * C, column-major, with C = D = out.
struct CublasLtPlan {
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  cudaDataType_t scale = CUDA_R_32F;  // of alpha and beta
  cublasOperation_t trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N;
  int64_t m = 0, n = 0, k = 0;  // D is m x n, op(A) m x k, op(B) k x n
  int32_t batch = 1;
  CublasLtMatrix a, b, d;
  double alpha = 1, beta = 0;
  bool empty = false;  // nothing to compute (m or n is 0)
};

// Validates `p` (InvalidArgument naming the field, as LaunchGemm) and
// translates it. Pure host code: no CUDA call.
absl::StatusOr<CublasLtPlan> PlanCublasLtGemm(const GemmProblem& p);

// Enqueues `p` on `stream` through cuBLASLt, with a process-wide handle per
// device, a 32 MiB workspace per (device, stream) and the heuristic's first
// algorithm cached per problem signature. Thread-safe.
absl::Status LaunchGemmCublasLt(const GemmProblem& p, cudaStream_t stream);

// cuBLAS status as text, e.g. "CUBLAS_STATUS_NOT_SUPPORTED".
const char* CublasStatusName(cublasStatus_t s);

}  // namespace loom::cuda

#endif  // LOOM_KERNELS_CUDA_GEMM_CUBLASLT_H_
