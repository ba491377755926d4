// Host storage of one dtype for emulated kernel tests: 16-byte aligned (so
// kernels take their cp.async paths), filled and read as doubles, with
// values rounded to the dtype exactly as the runtime rounds them.
//
//   HostBuffer q(DType::kBF16, n);
//   q.Fill(seed);                 // uniform in [-1, 1), rounded to bf16
//   LaunchSomething(q.data(), ...);
//   double x = q.Get(i);
#ifndef LOOM_KERNELS_CUDA_TESTING_HOST_BUFFER_H_
#define LOOM_KERNELS_CUDA_TESTING_HOST_BUFFER_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "runtime/dtype.h"
#include "runtime/half.h"

namespace loom::kernel_testing {

class HostBuffer {
 public:
  HostBuffer(DType dtype, size_t n) : dtype_(dtype), n_(n), bytes_(n * SizeOf(dtype) + 16) {
    const uintptr_t p = reinterpret_cast<uintptr_t>(bytes_.data());
    base_ = bytes_.data() + (16 - p % 16) % 16;
  }
  DType dtype() const { return dtype_; }
  size_t size() const { return n_; }
  void* data() { return base_; }
  const void* data() const { return base_; }

  void Set(size_t i, double v) {
    unsigned char* p = base_ + i * SizeOf(dtype_);
    switch (dtype_) {
      case DType::kF32: {
        const float f = float(v);
        std::memcpy(p, &f, 4);
        break;
      }
      case DType::kF64:
        std::memcpy(p, &v, 8);
        break;
      case DType::kBF16: {
        const uint16_t b = BFloat16(float(v)).bits;
        std::memcpy(p, &b, 2);
        break;
      }
      case DType::kF16: {
        const uint16_t b = Float16(float(v)).bits;
        std::memcpy(p, &b, 2);
        break;
      }
      default:
        std::abort();
    }
  }
  double Get(size_t i) const {
    const unsigned char* p = base_ + i * SizeOf(dtype_);
    switch (dtype_) {
      case DType::kF32: {
        float f;
        std::memcpy(&f, p, 4);
        return f;
      }
      case DType::kF64: {
        double d;
        std::memcpy(&d, p, 8);
        return d;
      }
      case DType::kBF16: {
        uint16_t b;
        std::memcpy(&b, p, 2);
        return float(BFloat16::FromBits(b));
      }
      case DType::kF16: {
        uint16_t b;
        std::memcpy(&b, p, 2);
        return float(Float16::FromBits(b));
      }
      default:
        std::abort();
    }
  }
  // Uniform values in [low, high), rounded to the dtype.
  void Fill(uint32_t seed, double low = -1.0, double high = 1.0) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(low, high);
    for (size_t i = 0; i < n_; ++i) Set(i, u(rng));
  }
  void FillValue(double v) {
    for (size_t i = 0; i < n_; ++i) Set(i, v);
  }
  std::vector<double> ToDoubles() const {
    std::vector<double> out(n_);
    for (size_t i = 0; i < n_; ++i) out[i] = Get(i);
    return out;
  }

 private:
  DType dtype_;
  size_t n_;
  std::vector<unsigned char> bytes_;
  unsigned char* base_;
};

// ||a - b|| / max(||b||, 1e-30); NaN if any element of a is NaN.
inline double RelativeError(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) return NAN;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

}  // namespace loom::kernel_testing

#endif  // LOOM_KERNELS_CUDA_TESTING_HOST_BUFFER_H_
