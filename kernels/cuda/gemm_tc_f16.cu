// Tensor-core GEMM kernels for f16 inputs (gemm_tensor_core.cuh).
#include "kernels/cuda/gemm_tensor_core.cuh"

namespace loom::LOOM_CUDA_NAMESPACE::gemm_internal {

absl::Status LaunchTensorCoreGemmF16(const GemmProblem& p, Tile tile, cudaStream_t stream) {
  return tc::LaunchForInput<__half>(p, tile, stream);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE::gemm_internal
