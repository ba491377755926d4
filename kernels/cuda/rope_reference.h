// Plain host reference of the CUDA RoPE kernel (rope.h), for tests: the
// formula of kernels/cpu/rope.cc on contiguous [B, T, H, E] tensors.
//
//   RopeReference<BFloat16>(x.data(), pos.data(), freq.data(), b, t, h, e, false, out.data());
#ifndef LOOM_KERNELS_CUDA_ROPE_REFERENCE_H_
#define LOOM_KERNELS_CUDA_ROPE_REFERENCE_H_

#include <cmath>
#include <cstdint>

#include "runtime/dtype.h"

namespace loom::reference {

// inv_freq [E/2] in compute_t<T> (f32, or f64 for f64 x).
template <typename T>
void RopeReference(const T* x, const int64_t* positions, const compute_t<T>* inv_freq,
                   int64_t batch, int64_t seqlen, int64_t heads, int64_t head_dim, bool inverse,
                   T* out) {
  using C = compute_t<T>;
  auto round = [](C v) { return Load(Store<T>(v)); };
  const int64_t half = head_dim / 2;
  for (int64_t tok = 0; tok < batch * seqlen; ++tok) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t base = (tok * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const C angle = C(positions[tok]) * inv_freq[i];
        const C c = round(std::cos(angle));
        const C s = inverse ? -round(std::sin(angle)) : round(std::sin(angle));
        const C x1 = Load(x[base + i]), x2 = Load(x[base + i + half]);
        out[base + i] = Store<T>(round(x1 * c) + round(-x2 * s));
        out[base + i + half] = Store<T>(round(x2 * c) + round(x1 * s));
      }
    }
  }
}

}  // namespace loom::reference

#endif  // LOOM_KERNELS_CUDA_ROPE_REFERENCE_H_
