// CPU softmax and log-softmax over the last dim of a contiguous [N, D].
//
// Rows are independent tasks; within a row the max, the sum of exponentials
// (accumulated in f64) and the normalisation run sequentially, so results are
// identical for any thread count. 16-bit inputs compute in f32.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "runtime/parallel.h"

namespace loom::cpu {
namespace {

void CheckRows(const char* op, const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dim() == 2 && a.sizes() == b.sizes() && a.dtype() == b.dtype(),
             "%s: expected two [N, D] tensors of one dtype, got %s %s and %s %s", op,
             std::string(DTypeName(a.dtype())), a.ShapeString(), std::string(DTypeName(b.dtype())),
             b.ShapeString());
  LOOM_CHECK(a.is_contiguous() && b.is_contiguous(), "%s: tensors must be contiguous", op);
}

}  // namespace

void CpuBackend::Softmax(const Tensor& x, bool log, const Tensor& out) {
  CheckRows("Softmax", x, out);
  const int64_t n = x.size(0), d = x.size(1);
  if (n == 0 || d == 0) return;
  DispatchFloating(x.dtype(), "Softmax", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* xs = static_cast<const T*>(x.raw_data());
    T* os = static_cast<T*>(out.raw_data());
    ParallelFor(n, RowGrain(d), [&](int64_t row_begin, int64_t row_end) {
      // One row of x - max (log) or exp(x - max), in the compute type.
      std::vector<C> buf(static_cast<size_t>(d));
      for (int64_t r = row_begin; r < row_end; ++r) {
        const T* xr = xs + r * d;
        T* orow = os + r * d;
        C mx = -std::numeric_limits<C>::infinity();
        for (int64_t j = 0; j < d; ++j) mx = std::max(mx, Load(xr[j]));
        double sum = 0;
        if (log) {
          for (int64_t j = 0; j < d; ++j) {
            buf[j] = Load(xr[j]) - mx;
            sum += double(std::exp(buf[j]));
          }
          const C log_sum = C(std::log(sum));
          for (int64_t j = 0; j < d; ++j) orow[j] = Store<T>(buf[j] - log_sum);
        } else {
          for (int64_t j = 0; j < d; ++j) {
            buf[j] = std::exp(Load(xr[j]) - mx);
            sum += double(buf[j]);
          }
          const C inv_sum = C(1.0 / sum);
          for (int64_t j = 0; j < d; ++j) orow[j] = Store<T>(buf[j] * inv_sum);
        }
      }
    });
  });
}

void CpuBackend::SoftmaxBackward(const Tensor& y, const Tensor& gy, bool log, const Tensor& gx) {
  CheckRows("SoftmaxBackward", y, gy);
  CheckRows("SoftmaxBackward", y, gx);
  const int64_t n = y.size(0), d = y.size(1);
  if (n == 0 || d == 0) return;
  DispatchFloating(y.dtype(), "SoftmaxBackward", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* ys = static_cast<const T*>(y.raw_data());
    const T* gys = static_cast<const T*>(gy.raw_data());
    T* gxs = static_cast<T*>(gx.raw_data());
    ParallelFor(n, RowGrain(d), [&](int64_t row_begin, int64_t row_end) {
      for (int64_t r = row_begin; r < row_end; ++r) {
        const T* yr = ys + r * d;
        const T* gyr = gys + r * d;
        T* gxr = gxs + r * d;
        if (log) {
          // y = x - lse: gx = gy - softmax * sum(gy).
          const C s = C(RowSum(d, [&](int64_t j) { return double(Load(gyr[j])); }));
          for (int64_t j = 0; j < d; ++j) {
            gxr[j] = Store<T>(Load(gyr[j]) - std::exp(Load(yr[j])) * s);
          }
        } else {
          // gx = y * (gy - <gy, y>).
          const C s =
              C(RowSum(d, [&](int64_t j) { return double(Load(gyr[j])) * double(Load(yr[j])); }));
          for (int64_t j = 0; j < d; ++j) gxr[j] = Store<T>(Load(yr[j]) * (Load(gyr[j]) - s));
        }
      }
    });
  });
}

}  // namespace loom::cpu
