// Attention on CUDA devices: FlashAttention-2-style forward and backward.
//
// q [B, T, H, E], k and v [B, S, G, E] (H % G == 0: grouped-query and
// multi-query attention), out [B, T, H, E], lse [B, H, T] (f32; f64 for f64
// inputs), each with arbitrary batch/token/head strides and a contiguous last
// dim. bf16 and f16 with E = 64 or 128 run on the tensor-core kernels
// (attention_forward.cu, attention_backward.cu); other dtypes and head dims
// on a SIMT kernel (attention_simt.cu) with the same semantics.
//
// Varlen (packed rows): with cu_seqlens_q/k (i32 [num_seqs + 1] over the
// flattened B*T and B*S token axes) sequences never attend across their
// boundaries. Causal masking is bottom-right aligned per sequence, as in
// FlashAttention-2: query i of a sequence with Tq queries and Tk keys sees
// keys j <= i + Tk - Tq. A query that sees no key gets out = 0, lse = -inf.
// lse lets ring attention merge partial results.
#ifndef LOOM_KERNELS_CUDA_ATTENTION_H_
#define LOOM_KERNELS_CUDA_ATTENTION_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/device/namespace.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

// Element strides of a [B, T, H, E] tensor (E contiguous).
struct BthStrides {
  int64_t batch = 0, token = 0, head = 0;
};

struct AttentionProblem {
  DType dtype = DType::kBF16;
  int64_t batch = 1, seqlen_q = 0, seqlen_k = 0, heads = 0, kv_heads = 0, head_dim = 0;
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  BthStrides q_strides, k_strides, v_strides;
  void* out = nullptr;  // [B, T, H, E]
  BthStrides out_strides;
  void* lse = nullptr;  // [B, H, T] contiguous, f32 (f64 for f64 inputs)
  // Varlen: when set, batch must be 1 and T, S are the total token counts.
  const int32_t* cu_seqlens_q = nullptr;  // device pointers, [num_seqs + 1]
  const int32_t* cu_seqlens_k = nullptr;
  int64_t num_seqs = 0;
  int64_t max_seqlen_q = 0, max_seqlen_k = 0;  // upper bounds, for the grid
  bool causal = true;
  double scale = 0.0;  // softmax scale; 0 means 1/sqrt(E)
};

struct AttentionBackwardProblem {
  AttentionProblem fwd;        // the forward's inputs, with out and lse as it wrote them
  const void* gout = nullptr;  // [B, T, H, E], out_strides
  void* gq = nullptr;          // like q (q_strides)
  void* gk = nullptr;          // like k (k_strides)
  void* gv = nullptr;          // like v (v_strides)
  // Scratch of AttentionBackwardWorkspaceBytes(fwd) bytes (f32 dQ accumulators
  // and the row sums of dO * O).
  void* workspace = nullptr;
  // Fixed reduction order for dQ (and dK/dV under grouped-query attention):
  // bit-identical results run to run, somewhat slower.
  bool deterministic = false;
};

absl::Status LaunchAttentionForward(const AttentionProblem& p, cudaStream_t stream);
size_t AttentionBackwardWorkspaceBytes(const AttentionProblem& p);
absl::Status LaunchAttentionBackward(const AttentionBackwardProblem& p, cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_ATTENTION_H_
