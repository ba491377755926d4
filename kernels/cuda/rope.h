// Rotary position embedding on CUDA devices, with the semantics and rounding
// of Backend::Rope (runtime/backend.h; the CPU version is kernels/cpu/rope.cc):
// Hugging Face Llama's rotate_half convention, element i < E/2 pairs with
// i + E/2:
//
//   angle = float(positions[b][t]) * inv_freq[i]        (f64 for f64 x)
//   c = round_T(cos(angle)), s = round_T(sin(angle))     (s = -s when inverse)
//   out[i]       = round_T(x[i] * c) + round_T(-x[i + E/2] * s)
//   out[i + E/2] = round_T(x[i + E/2] * c) + round_T(x[i] * s)
//
// `inverse` rotates by -angle: it is the backward (the gradient of a rotation
// is the inverse rotation). x and out are [B, T, H, E] with any batch, token
// and head strides (in elements) and a contiguous last dim, so q and k can be
// rotated in place inside a fused QKV projection; out may equal x. positions
// is a contiguous i64 [B, T], inv_freq a contiguous [E/2] of f32 (f64 for f64
// x). Pointers are device pointers; the launch is asynchronous on `stream`.
//
// Each thread owns a few pairs (one 16-byte vector per half where the layout
// allows) of one token, computes their cos and sin once and applies them to up
// to four heads.
//
//   RopeArgs a{.dtype = DType::kBF16, .batch = b, .seqlen = t, .heads = h, .head_dim = 128,
//              .x = q, .x_strides = {t * h * 128, h * 128, 128}, .out = q,
//              .out_strides = {t * h * 128, h * 128, 128}, .positions = pos, .inv_freq = f};
//   LOOM_RETURN_IF_ERROR(LaunchRope(a, stream));
#ifndef LOOM_KERNELS_CUDA_ROPE_H_
#define LOOM_KERNELS_CUDA_ROPE_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/device/namespace.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

// Element strides of a [B, T, H, E] tensor whose last dim is contiguous.
struct RopeStrides {
  int64_t batch = 0, token = 0, head = 0;
};

struct RopeArgs {
  DType dtype = DType::kBF16;                              // of x and out
  int64_t batch = 0, seqlen = 0, heads = 0, head_dim = 0;  // head_dim even
  const void* x = nullptr;
  RopeStrides x_strides;
  void* out = nullptr;
  RopeStrides out_strides;
  const int64_t* positions = nullptr;  // [B, T]
  const void* inv_freq = nullptr;      // [head_dim / 2]
  bool inverse = false;
};

absl::Status LaunchRope(const RopeArgs& a, cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_ROPE_H_
