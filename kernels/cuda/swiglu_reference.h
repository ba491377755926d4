// Plain host reference of the CUDA SwiGLU kernels (swiglu.h), for tests: the
// formulas of kernels/cpu/swiglu.cc, one element at a time over n elements.
//
//   SwiGluForwardReference<BFloat16>(gate.data(), up.data(), n, out.data());
#ifndef LOOM_KERNELS_CUDA_SWIGLU_REFERENCE_H_
#define LOOM_KERNELS_CUDA_SWIGLU_REFERENCE_H_

#include <cmath>
#include <cstdint>

#include "runtime/dtype.h"

namespace loom::reference {

template <typename T>
void SwiGluForwardReference(const T* gate, const T* up, int64_t n, T* out) {
  using C = compute_t<T>;
  for (int64_t i = 0; i < n; ++i) {
    const C x = Load(gate[i]);
    const T act = Store<T>(x / (C(1) + std::exp(-x)));
    out[i] = Store<T>(Load(act) * Load(up[i]));
  }
}

template <typename T>
void SwiGluBackwardReference(const T* gate, const T* up, const T* gout, int64_t n, T* ggate,
                             T* gup) {
  using C = compute_t<T>;
  for (int64_t i = 0; i < n; ++i) {
    const C x = Load(gate[i]), dy = Load(gout[i]);
    const C denom = C(1) + std::exp(-x);
    const C s = C(1) / denom;
    ggate[i] = Store<T>(dy * Load(up[i]) * s * (C(1) + x * (C(1) - s)));
    gup[i] = Store<T>(dy * Load(Store<T>(x / denom)));
  }
}

}  // namespace loom::reference

#endif  // LOOM_KERNELS_CUDA_SWIGLU_REFERENCE_H_
