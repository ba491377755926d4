// Plain host reference of the softmax kernels: loops in double over
// row-major [rows, cols] values.
#ifndef LOOM_KERNELS_CUDA_SOFTMAX_REFERENCE_H_
#define LOOM_KERNELS_CUDA_SOFTMAX_REFERENCE_H_

#include <cmath>
#include <cstdint>
#include <vector>

namespace loom::reference {

inline std::vector<double> Softmax(int64_t rows, int64_t cols, const std::vector<double>& x,
                                   bool log) {
  std::vector<double> out(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    const double* xr = x.data() + r * cols;
    double mx = -INFINITY;
    for (int64_t j = 0; j < cols; ++j) mx = std::max(mx, xr[j]);
    double sum = 0;
    for (int64_t j = 0; j < cols; ++j) sum += std::exp(xr[j] - mx);
    for (int64_t j = 0; j < cols; ++j) {
      out[size_t(r * cols + j)] = log ? xr[j] - mx - std::log(sum) : std::exp(xr[j] - mx) / sum;
    }
  }
  return out;
}

// Gradient of sum(gy * softmax(x)) (or log_softmax) given y = softmax(x) (or log_softmax).
inline std::vector<double> SoftmaxBackward(int64_t rows, int64_t cols, const std::vector<double>& y,
                                           const std::vector<double>& gy, bool log) {
  std::vector<double> gx(y.size());
  for (int64_t r = 0; r < rows; ++r) {
    const size_t base = size_t(r * cols);
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += log ? gy[base + j] : gy[base + j] * y[base + j];
    for (int64_t j = 0; j < cols; ++j) {
      gx[base + j] =
          log ? gy[base + j] - std::exp(y[base + j]) * s : y[base + j] * (gy[base + j] - s);
    }
  }
  return gx;
}

}  // namespace loom::reference

#endif  // LOOM_KERNELS_CUDA_SOFTMAX_REFERENCE_H_
