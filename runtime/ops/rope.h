// Rotary position embedding (RoPE), Hugging Face Llama convention: element i
// of a head is rotated together with element i + E/2 ("rotate_half").
#ifndef LOOM_RUNTIME_OPS_ROPE_H_
#define LOOM_RUNTIME_OPS_ROPE_H_

#include <cstdint>

#include "runtime/dtype.h"
#include "runtime/tensor.h"

namespace loom {

// inv_freq[i] = 1 / theta^(2i / head_dim), i < head_dim / 2, computed as HF
// does (theta ** (arange(0, dim, 2) / dim) in f32; in f64 for dtype f64).
// Frequency scaling (Llama 3 rope_scaling) is applied by the caller to this.
Tensor RopeInvFreq(int64_t head_dim, double theta, DType dtype = DType::kF32);

// x [B, T, H, E] rotated per token by angle = float(position) * inv_freq[i].
// positions i64 [B, T], or [1, T] shared by all rows (packed rows restart at 0
// per sequence); inv_freq [E/2]
// is used in f32 (f64 for f64 x), cast if needed. Differentiable in x only.
Tensor ApplyRope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq);

}  // namespace loom

#endif  // LOOM_RUNTIME_OPS_ROPE_H_
