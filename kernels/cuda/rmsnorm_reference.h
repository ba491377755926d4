// Plain host reference of the CUDA RMSNorm kernels (rmsnorm.h), for tests:
// straightforward loops with the rounding points of kernels/cpu/rmsnorm.cc,
// sums in double. T is float, double, BFloat16 or Float16 (runtime/half.h).
//
//   RmsNormForwardReference<BFloat16>(x.data(), w.data(), rows, dim, 1e-5, y.data(), rstd.data());
#ifndef LOOM_KERNELS_CUDA_RMSNORM_REFERENCE_H_
#define LOOM_KERNELS_CUDA_RMSNORM_REFERENCE_H_

#include <cmath>
#include <cstdint>
#include <vector>

#include "runtime/dtype.h"

namespace loom::reference {

// Contiguous x, y [rows, dim]; w [dim]; rstd [rows].
template <typename T>
void RmsNormForwardReference(const T* x, const T* w, int64_t rows, int64_t dim, double eps, T* y,
                             compute_t<T>* rstd) {
  using S = compute_t<T>;
  for (int64_t r = 0; r < rows; ++r) {
    double sum_sq = 0;
    for (int64_t j = 0; j < dim; ++j) {
      const double v = double(Load(x[r * dim + j]));
      sum_sq += v * v;
    }
    const S rs = S(1) / std::sqrt(S(sum_sq / double(dim)) + S(eps));
    rstd[r] = rs;
    for (int64_t j = 0; j < dim; ++j) {
      const T normed = Store<T>(Load(x[r * dim + j]) * rs);
      y[r * dim + j] = Store<T>(Load(w[j]) * Load(normed));
    }
  }
}

// gx [rows, dim]; gw [dim] overwritten.
template <typename T>
void RmsNormBackwardReference(const T* gy, const T* x, const T* w, const compute_t<T>* rstd,
                              int64_t rows, int64_t dim, T* gx, T* gw) {
  using S = compute_t<T>;
  std::vector<double> gw_sum(static_cast<size_t>(dim), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const S rs = rstd[r];
    double dot = 0;
    for (int64_t j = 0; j < dim; ++j) {
      dot += double(Load(gy[r * dim + j]) * Load(w[j])) * double(Load(x[r * dim + j]));
    }
    const S m = S(double(rs) * double(rs) * dot / double(dim));
    for (int64_t j = 0; j < dim; ++j) {
      const S g = Load(gy[r * dim + j]), xv = Load(x[r * dim + j]);
      gx[r * dim + j] = Store<T>(rs * (g * Load(w[j]) - xv * m));
      const T normed = Store<T>(xv * rs);
      gw_sum[size_t(j)] += double(g * Load(normed));
    }
  }
  for (int64_t j = 0; j < dim; ++j) gw[j] = Store<T>(S(gw_sum[size_t(j)]));
}

}  // namespace loom::reference

#endif  // LOOM_KERNELS_CUDA_RMSNORM_REFERENCE_H_
