// Internal to the attention launchers: the kernel families LaunchAttention*
// chooses between, exposed so tests can run each on any problem.
#ifndef LOOM_KERNELS_CUDA_ATTENTION_INTERNAL_H_
#define LOOM_KERNELS_CUDA_ATTENTION_INTERNAL_H_

#include "kernels/cuda/attention.h"

namespace loom::LOOM_CUDA_NAMESPACE::attn {

struct DeviceProblem;

// Whether the tensor-core kernels take `p`: bf16/f16, E = 64 or 128, 16-byte
// aligned bases and strides that are multiples of 8 elements.
bool FlashEligible(const AttentionProblem& p);

// The device-side view of a validated problem (backward fields from `bwd`
// when given; workspace carved as AttentionBackwardWorkspaceBytes says).
DeviceProblem MakeDeviceProblem(const AttentionProblem& p, const AttentionBackwardProblem* bwd);

absl::Status LaunchFlashForward(const AttentionProblem& prob, const DeviceProblem& p,
                                cudaStream_t stream);
absl::Status LaunchFlashBackward(const AttentionBackwardProblem& prob, const DeviceProblem& p,
                                 cudaStream_t stream);
absl::Status LaunchSimtForward(const AttentionProblem& prob, const DeviceProblem& p,
                               cudaStream_t stream);
absl::Status LaunchSimtBackward(const AttentionBackwardProblem& prob, const DeviceProblem& p,
                                cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE::attn

#endif  // LOOM_KERNELS_CUDA_ATTENTION_INTERNAL_H_
