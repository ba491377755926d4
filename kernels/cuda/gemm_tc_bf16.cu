// Tensor-core GEMM kernels for bf16 inputs (gemm_tensor_core.cuh).
#include "kernels/cuda/gemm_tensor_core.cuh"

namespace loom::LOOM_CUDA_NAMESPACE::gemm_internal {

absl::Status LaunchTensorCoreGemmBf16(const GemmProblem& p, Tile tile, cudaStream_t stream) {
  return tc::LaunchForInput<__nv_bfloat16>(p, tile, stream);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE::gemm_internal
