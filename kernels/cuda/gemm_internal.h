// Internal to the GEMM launchers: the kernel variants LaunchGemm chooses
// between, exposed so tests can run each tile configuration on any shape.
#ifndef LOOM_KERNELS_CUDA_GEMM_INTERNAL_H_
#define LOOM_KERNELS_CUDA_GEMM_INTERNAL_H_

#include "kernels/cuda/gemm.h"

namespace loom::LOOM_CUDA_NAMESPACE::gemm_internal {

// Tensor-core block tiles (M x N x K per block, warps, pipeline stages).
enum class Tile {
  k128x128,  // 128 x 128 x 32, 8 warps of 64 x 32, 3 stages (60 KiB shared memory)
  k64x64,    // 64 x 64 x 32, 4 warps of 32 x 32, 3 stages (30 KiB)
};

// The tile LaunchGemm picks: the large one once it yields enough blocks to
// fill a GPU, the small one for small products.
Tile ChooseTile(const GemmProblem& p);

// bf16 / f16 inputs; `p` already validated.
absl::Status LaunchTensorCoreGemmBf16(const GemmProblem& p, Tile tile, cudaStream_t stream);
absl::Status LaunchTensorCoreGemmF16(const GemmProblem& p, Tile tile, cudaStream_t stream);
// f32/f64 inputs; `p` already validated.
absl::Status LaunchSimtGemm(const GemmProblem& p, cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE::gemm_internal

#endif  // LOOM_KERNELS_CUDA_GEMM_INTERNAL_H_
