// Scaled-dot-product attention with causal masking, grouped-query attention
// (GQA / MQA) and packed sequences, with FlashAttention-2 semantics: causal
// masking is bottom-right aligned per sequence, and a query that sees no key
// outputs 0 (and gets zero gradients).
//
//   Tensor out = ScaledDotProductAttention(q_BTHE, k_BSGE, v_BSGE);  // causal
//
// Packed rows hold several sequences back to back; attention never crosses a
// sequence boundary. Boundaries come from cu_seqlens (over the flattened B*T
// token axis, as FlashAttention's varlen API) or from position ids (a new
// sequence wherever the position restarts at 0).
#ifndef LOOM_RUNTIME_OPS_ATTENTION_H_
#define LOOM_RUNTIME_OPS_ATTENTION_H_

#include "runtime/tensor.h"

namespace loom {

struct AttentionOptions {
  bool causal = true;
  double scale = 0;     // 0 -> 1/sqrt(E)
  Tensor cu_seqlens_q;  // i32 [n+1] over flattened B*T; undefined: one sequence per row
  Tensor cu_seqlens_k;  // defaults to cu_seqlens_q when only that is given
  // Alternative to cu_seqlens (self-attention, T == S): i64 [B, T]; a sequence
  // starts at each row start and wherever position_ids == 0.
  Tensor position_ids;
};

// softmax(scale * q k^T + mask) v per sequence and query head. q [B, T, H, E],
// k and v [B, S, G, E] with H % G == 0 (query head h uses kv head h / (H/G));
// returns [B, T, H, E] in q's dtype. Differentiable in q, k and v. 16-bit
// inputs compute in f32.
Tensor ScaledDotProductAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const AttentionOptions& options = {});

// i32 [n+1] boundaries over the flattened B*T tokens, from position ids (i64 [B,T]).
Tensor CuSeqlensFromPositionIds(const Tensor& position_ids);

}  // namespace loom

#endif  // LOOM_RUNTIME_OPS_ATTENTION_H_
