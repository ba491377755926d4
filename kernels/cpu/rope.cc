// CPU rotary position embedding, Hugging Face Llama convention (rotate_half:
// element i pairs with i + E/2).
//
// As in HF, the angle is float(position) * inv_freq in the inv_freq dtype,
// cos and sin are rounded to x's dtype, and out = x * cos + rotate_half(x) * sin
// rounds each product and the sum to x's dtype (no-ops for f32 and f64; for
// bf16 they reproduce HF's eager rounding). cos/sin are computed once per
// token and shared by its H heads.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "runtime/parallel.h"

namespace loom::cpu {
namespace {

// v rounded to T and back: what storing an intermediate in x's dtype does.
template <typename T>
inline compute_t<T> Round(compute_t<T> v) {
  return Load(Store<T>(v));
}

}  // namespace

void CpuBackend::Rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                      bool inverse, const Tensor& out) {
  LOOM_CHECK(x.dim() == 4 && x.size(3) % 2 == 0 && x.is_contiguous(),
             "Rope: x must be a contiguous [B, T, H, E] with E even, got %s", x.ShapeString());
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2), e = x.size(3), half = e / 2;
  LOOM_CHECK(out.sizes() == x.sizes() && out.dtype() == x.dtype() && out.is_contiguous(),
             "Rope: out %s %s for x %s %s", std::string(DTypeName(out.dtype())), out.ShapeString(),
             std::string(DTypeName(x.dtype())), x.ShapeString());
  LOOM_CHECK(positions.dtype() == DType::kI64 && positions.dim() == 2 && positions.size(0) == b &&
                 positions.size(1) == t && positions.is_contiguous(),
             "Rope: positions must be a contiguous i64 [%d, %d], got %s %s", b, t,
             std::string(DTypeName(positions.dtype())), positions.ShapeString());
  const DType freq_dtype = x.dtype() == DType::kF64 ? DType::kF64 : DType::kF32;
  LOOM_CHECK(inv_freq.dtype() == freq_dtype && inv_freq.dim() == 1 && inv_freq.size(0) == half &&
                 inv_freq.is_contiguous(),
             "Rope: inv_freq must be a contiguous %s [%d], got %s %s",
             std::string(DTypeName(freq_dtype)), half, std::string(DTypeName(inv_freq.dtype())),
             inv_freq.ShapeString());
  const int64_t tokens = b * t;
  if (tokens == 0 || h == 0 || e == 0) return;
  DispatchFloating(x.dtype(), "Rope", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;  // also inv_freq's type
    const T* xs = static_cast<const T*>(x.raw_data());
    T* os = static_cast<T*>(out.raw_data());
    const int64_t* pos = positions.data<int64_t>();
    const C* freq = inv_freq.data<C>();
    const int64_t row = h * e;
    const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / row);
    ParallelFor(tokens, grain, [&](int64_t tok_begin, int64_t tok_end) {
      std::vector<C> cos_t(static_cast<size_t>(half)), sin_t(static_cast<size_t>(half));
      for (int64_t tok = tok_begin; tok < tok_end; ++tok) {
        const C p = C(pos[tok]);
        for (int64_t i = 0; i < half; ++i) {
          const C angle = p * freq[i];
          cos_t[i] = Round<T>(std::cos(angle));
          // The backward rotates by -angle.
          sin_t[i] = inverse ? -Round<T>(std::sin(angle)) : Round<T>(std::sin(angle));
        }
        for (int64_t head = 0; head < h; ++head) {
          const T* xr = xs + tok * row + head * e;
          T* orow = os + tok * row + head * e;
          for (int64_t i = 0; i < half; ++i) {
            const C x1 = Load(xr[i]), x2 = Load(xr[i + half]);
            // rotate_half(x) = (-x2, x1).
            orow[i] = Store<T>(Round<T>(x1 * cos_t[i]) + Round<T>(-x2 * sin_t[i]));
            orow[i + half] = Store<T>(Round<T>(x2 * cos_t[i]) + Round<T>(x1 * sin_t[i]));
          }
        }
      }
    });
  });
}

}  // namespace loom::cpu
