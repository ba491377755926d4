// cuDNN scaled-dot-product attention behind the same AttentionProblem as our
// kernels (attention.h): the baseline of the attention benchmark and a
// selectable alternative at run time (LOOM_ATTENTION=cudnn, see
// kernel_select.h).
//
//   LOOM_RETURN_IF_ERROR(LaunchAttentionForwardCudnn(problem, stream));
//
// UNVERIFIED ON A GPU: this machine has none. The graphs (attention_cudnn_graph.h)
// are tested on the host by an interpreter against the attention reference;
// their lowering to cuDNN 9 backend descriptors here has only been compiled,
// linked and reviewed against cudnn_graph.h and NVIDIA's backend API docs.
// Without a device the launchers fail with FailedPrecondition.
//
// Scope: bf16/f16, head dims multiple of 8 up to 256, grouped-query heads,
// causal masks bottom-right aligned with seqlen_q <= seqlen_k, rows 16-byte
// aligned, and varlen (cu_seqlens): ragged sequences with a padding mask,
// whose lengths and offsets a small kernel derives from cu_seqlens on the
// stream (attention_cudnn_varlen.h). Varlen limits: every sequence needs
// Tq <= Tk when causal and at least one key (cuDNN has no empty rows; ours
// write out = 0, lse = -inf there), which the host cannot check without
// reading cu_seqlens. lse is the same [B, H, T] f32 log-sum-exp as ours, so a
// forward from one implementation can feed the backward of the other. The
// backward ignores AttentionBackwardProblem's workspace: plans, their
// workspaces and the graph's scratch (rowsum(dO * O), the f32 dQ accumulator,
// varlen layouts) are cached per device and stream.
#ifndef LOOM_KERNELS_CUDA_ATTENTION_CUDNN_H_
#define LOOM_KERNELS_CUDA_ATTENTION_CUDNN_H_

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "kernels/cuda/attention.h"

namespace loom::cuda {

absl::Status LaunchAttentionForwardCudnn(const AttentionProblem& p, cudaStream_t stream);
absl::Status LaunchAttentionBackwardCudnn(const AttentionBackwardProblem& p, cudaStream_t stream);

}  // namespace loom::cuda

#endif  // LOOM_KERNELS_CUDA_ATTENTION_CUDNN_H_
