// CPU RMSNorm over the last dim, with Hugging Face LlamaRMSNorm rounding:
//   n = (x * rstd) rounded to x's dtype,  y = w * n,  rstd = 1/sqrt(mean(x^2) + eps)
// computed in f32 (f64 for f64). Sums of squares accumulate in f64.
//
// The backward computes gx row by row, then gw column by column: every task
// owns a range of columns and sums over all rows in row order, so gw is
// bit-identical for any thread count and needs no [blocks, D] scratch.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "runtime/parallel.h"

namespace loom::cpu {
namespace {

constexpr int64_t kColumnGrain = 64;

void CheckArgs(const char* op, const Tensor& x, const Tensor& w, const Tensor& rstd) {
  LOOM_CHECK(x.dim() == 2 && x.is_contiguous(), "%s: x must be a contiguous [N, D], got %s", op,
             x.ShapeString());
  LOOM_CHECK(w.dim() == 1 && w.size(0) == x.size(1) && w.dtype() == x.dtype() && w.is_contiguous(),
             "%s: weight %s %s for x %s %s", op, std::string(DTypeName(w.dtype())), w.ShapeString(),
             std::string(DTypeName(x.dtype())), x.ShapeString());
  LOOM_CHECK(rstd.dim() == 1 && rstd.size(0) == x.size(0) && rstd.dtype() == StatDTypeOf(x.dtype()) &&
                 rstd.is_contiguous(),
             "%s: rstd must be a contiguous %s [%d], got %s %s", op,
             std::string(DTypeName(StatDTypeOf(x.dtype()))), x.size(0),
             std::string(DTypeName(rstd.dtype())), rstd.ShapeString());
}

void CheckLike(const char* op, const char* what, const Tensor& t, const Tensor& like) {
  LOOM_CHECK(t.sizes() == like.sizes() && t.dtype() == like.dtype() && t.is_contiguous(),
             "%s: %s is %s %s, expected a contiguous %s %s", op, what,
             std::string(DTypeName(t.dtype())), t.ShapeString(),
             std::string(DTypeName(like.dtype())), like.ShapeString());
}

}  // namespace

void CpuBackend::RmsNormForward(const Tensor& x, const Tensor& w, double eps, const Tensor& y,
                                const Tensor& rstd) {
  CheckArgs("RmsNorm", x, w, rstd);
  CheckLike("RmsNorm", "y", y, x);
  const int64_t n = x.size(0), d = x.size(1);
  if (n == 0) return;
  LOOM_CHECK(d > 0, "RmsNorm: x %s has an empty last dim", x.ShapeString());
  DispatchFloating(x.dtype(), "RmsNorm", [&](auto tag) {
    using T = decltype(tag);
    using S = compute_t<T>;
    const T* xs = static_cast<const T*>(x.raw_data());
    const T* ws = static_cast<const T*>(w.raw_data());
    T* ys = static_cast<T*>(y.raw_data());
    S* rs = rstd.data<S>();
    ParallelFor(n, RowGrain(d), [&](int64_t row_begin, int64_t row_end) {
      for (int64_t r = row_begin; r < row_end; ++r) {
        const T* xr = xs + r * d;
        T* yr = ys + r * d;
        const double sum_sq = RowSum(d, [&](int64_t j) {
          const double v = double(Load(xr[j]));
          return v * v;
        });
        // As HF: the mean is rounded to the compute type before eps and rsqrt.
        const S rstd_r = S(1) / std::sqrt(S(sum_sq / double(d)) + S(eps));
        rs[r] = rstd_r;
        for (int64_t j = 0; j < d; ++j) {
          const T normed = Store<T>(Load(xr[j]) * rstd_r);
          yr[j] = Store<T>(Load(ws[j]) * Load(normed));
        }
      }
    });
  });
}

void CpuBackend::RmsNormBackward(const Tensor& gy, const Tensor& x, const Tensor& w,
                                 const Tensor& rstd, const Tensor& gx, const Tensor& gw) {
  CheckArgs("RmsNormBackward", x, w, rstd);
  CheckLike("RmsNormBackward", "gy", gy, x);
  CheckLike("RmsNormBackward", "gx", gx, x);
  CheckLike("RmsNormBackward", "gw", gw, w);
  const int64_t n = x.size(0), d = x.size(1);
  DispatchFloating(x.dtype(), "RmsNormBackward", [&](auto tag) {
    using T = decltype(tag);
    using S = compute_t<T>;
    const T* xs = static_cast<const T*>(x.raw_data());
    const T* ws = static_cast<const T*>(w.raw_data());
    const T* gys = static_cast<const T*>(gy.raw_data());
    const S* rs = rstd.data<S>();
    T* gxs = static_cast<T*>(gx.raw_data());
    T* gws = static_cast<T*>(gw.raw_data());
    // gx = rstd * (gn - x * rstd^2 * <gn, x> / D) with gn = gy * w.
    ParallelFor(n, RowGrain(d), [&](int64_t row_begin, int64_t row_end) {
      for (int64_t r = row_begin; r < row_end; ++r) {
        const T* xr = xs + r * d;
        const T* gyr = gys + r * d;
        T* gxr = gxs + r * d;
        const S rstd_r = rs[r];
        const double dot = RowSum(
            d, [&](int64_t j) { return double(Load(gyr[j]) * Load(ws[j])) * double(Load(xr[j])); });
        const S m = S(double(rstd_r) * double(rstd_r) * dot / double(d));
        for (int64_t j = 0; j < d; ++j) {
          gxr[j] = Store<T>(rstd_r * (Load(gyr[j]) * Load(ws[j]) - Load(xr[j]) * m));
        }
      }
    });
    // gw[j] = sum over rows of gy * n, with n rounded as in the forward.
    ParallelFor(d, kColumnGrain, [&](int64_t col_begin, int64_t col_end) {
      std::vector<double> acc(size_t(col_end - col_begin), 0.0);
      for (int64_t r = 0; r < n; ++r) {
        const T* xr = xs + r * d;
        const T* gyr = gys + r * d;
        const S rstd_r = rs[r];
        for (int64_t j = col_begin; j < col_end; ++j) {
          const T normed = Store<T>(Load(xr[j]) * rstd_r);
          acc[size_t(j - col_begin)] += double(Load(gyr[j]) * Load(normed));
        }
      }
      for (int64_t j = col_begin; j < col_end; ++j)
        gws[j] = Store<T>(S(acc[size_t(j - col_begin)]));
    });
  });
}

}  // namespace loom::cpu
