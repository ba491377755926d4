// CPU SwiGLU, the gated activation of the Llama MLP: out = silu(gate) * up.
//
// silu(gate) is rounded to the input dtype before the product, as Hugging
// Face's eager act_fn(gate) * up does (a no-op for f32 and f64).
#include <cmath>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace loom::cpu {
namespace {

void CheckLike(const char* op, const char* what, const Tensor& t, const Tensor& gate) {
  LOOM_CHECK(t.sizes() == gate.sizes() && t.dtype() == gate.dtype() && t.is_contiguous(),
             "%s: %s is %s %s, expected a contiguous %s %s like gate", op, what,
             std::string(DTypeName(t.dtype())), t.ShapeString(),
             std::string(DTypeName(gate.dtype())), gate.ShapeString());
}

}  // namespace

void CpuBackend::SwiGluForward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  LOOM_CHECK(gate.is_contiguous(), "SwiGlu: gate %s must be contiguous", gate.ShapeString());
  CheckLike("SwiGlu", "up", up, gate);
  CheckLike("SwiGlu", "out", out, gate);
  DispatchFloating(gate.dtype(), "SwiGlu", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* g = static_cast<const T*>(gate.raw_data());
    const T* u = static_cast<const T*>(up.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    ForEachFlat(gate.numel(), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const C x = Load(g[i]);
        const T act = Store<T>(x / (C(1) + std::exp(-x)));  // silu as torch computes it
        o[i] = Store<T>(Load(act) * Load(u[i]));
      }
    });
  });
}

void CpuBackend::SwiGluBackward(const Tensor& gate, const Tensor& up, const Tensor& gout,
                                const Tensor& ggate, const Tensor& gup) {
  LOOM_CHECK(gate.is_contiguous(), "SwiGluBackward: gate %s must be contiguous",
             gate.ShapeString());
  CheckLike("SwiGluBackward", "up", up, gate);
  CheckLike("SwiGluBackward", "gout", gout, gate);
  CheckLike("SwiGluBackward", "ggate", ggate, gate);
  CheckLike("SwiGluBackward", "gup", gup, gate);
  DispatchFloating(gate.dtype(), "SwiGluBackward", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* g = static_cast<const T*>(gate.raw_data());
    const T* u = static_cast<const T*>(up.raw_data());
    const T* go = static_cast<const T*>(gout.raw_data());
    T* gg = static_cast<T*>(ggate.raw_data());
    T* gu = static_cast<T*>(gup.raw_data());
    ForEachFlat(gate.numel(), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const C x = Load(g[i]), dy = Load(go[i]);
        const C denom = C(1) + std::exp(-x);
        const C s = C(1) / denom;
        // d silu / dx = s * (1 + x * (1 - s)); d out / d up is the forward's rounded silu.
        gg[i] = Store<T>(dy * Load(u[i]) * s * (C(1) + x * (C(1) - s)));
        gu[i] = Store<T>(dy * Load(Store<T>(x / denom)));
      }
    });
  });
}

}  // namespace loom::cpu
