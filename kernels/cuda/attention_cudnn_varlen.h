// Small kernels that adapt our varlen attention layout (packed tokens, i32
// cu_seqlens, lse [H, total tokens]) to cuDNN's ragged one (per-sequence
// lengths, element offsets of each sequence's first token, padded
// [num_seqs, H, max_seqlen] statistics). Used by attention_cudnn.cc around a
// varlen cuDNN graph; tested under the emulator.
//
//   LOOM_RETURN_IF_ERROR(LaunchCudnnRaggedPrepare(cu_q, cu_k, n, strides, out, stream));
#ifndef LOOM_KERNELS_CUDA_ATTENTION_CUDNN_VARLEN_H_
#define LOOM_KERNELS_CUDA_ATTENTION_CUDNN_VARLEN_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/device/namespace.h"

namespace loom::LOOM_CUDA_NAMESPACE {

// Token strides (elements) of the packed q, k, v and out tensors.
struct RaggedTokenStrides {
  int64_t q = 0, k = 0, v = 0, out = 0;
};

// Device outputs: seq_q[i], seq_k[i] = lengths of sequence i < n;
// offset_x[i] = cu_x[i] * token stride of x, for i <= n.
struct RaggedLayout {
  int32_t* seq_q = nullptr;
  int32_t* seq_k = nullptr;
  int32_t* offset_q = nullptr;
  int32_t* offset_k = nullptr;
  int32_t* offset_v = nullptr;
  int32_t* offset_out = nullptr;
};

absl::Status LaunchCudnnRaggedPrepare(const int32_t* cu_q, const int32_t* cu_k, int64_t n,
                                      const RaggedTokenStrides& strides, const RaggedLayout& out,
                                      cudaStream_t stream);

// lse[h * total + cu_q[i] + t] = padded[(i * heads + h) * max_t + t] for t < seq length
// (to_packed), or the reverse with padded rows past a sequence's end set to 0.
absl::Status LaunchCudnnStatsRepack(const int32_t* cu_q, int64_t n, int64_t heads, int64_t max_t,
                                    int64_t total, float* padded, float* lse, bool to_packed,
                                    cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_ATTENTION_CUDNN_VARLEN_H_
