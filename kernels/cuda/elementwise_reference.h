// Plain host reference of the elementwise kernels: each op in double, the
// cast rule of Backend::Copy, and a loop over strided views.
//
//   const double want = reference::UnaryOp(UnaryOp::kSilu, x);  // then RoundTo(dtype, want)
#ifndef LOOM_KERNELS_CUDA_ELEMENTWISE_REFERENCE_H_
#define LOOM_KERNELS_CUDA_ELEMENTWISE_REFERENCE_H_

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/backend.h"
#include "runtime/dtype.h"

namespace loom::reference {

// The value `v` (exactly representable in its source dtype) cast to `to`:
// nonzero -> 1 for bool, truncation toward zero for integers, round to
// nearest even for floats (16-bit ones through f32).
inline double Cast(double v, DType to) {
  switch (to) {
    case DType::kBool:
      return v != 0.0 ? 1.0 : 0.0;
    case DType::kI32:
    case DType::kI64:
      return std::trunc(v);
    case DType::kF64:
      return v;
    case DType::kF32:
      return double(float(v));
    case DType::kBF16:
      return double(float(BFloat16(float(v))));
    case DType::kF16:
      return double(float(Float16(float(v))));
  }
  return v;
}

inline double Unary(UnaryOp op, double x) {
  switch (op) {
    case UnaryOp::kNeg:
      return -x;
    case UnaryOp::kExp:
      return std::exp(x);
    case UnaryOp::kLog:
      return std::log(x);
    case UnaryOp::kSqrt:
      return std::sqrt(x);
    case UnaryOp::kRsqrt:
      return 1.0 / std::sqrt(x);
    case UnaryOp::kAbs:
      return std::fabs(x);
    case UnaryOp::kSigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case UnaryOp::kSilu:
      return x / (1.0 + std::exp(-x));
    case UnaryOp::kTanh:
      return std::tanh(x);
    case UnaryOp::kSquare:
      return x * x;
    case UnaryOp::kReciprocal:
      return 1.0 / x;
    case UnaryOp::kRelu:
      return x > 0.0 ? x : 0.0;
    case UnaryOp::kSin:
      return std::sin(x);
    case UnaryOp::kCos:
      return std::cos(x);
  }
  return x;
}

// Integer division truncates when `integer` is set.
inline double Binary(BinaryOp op, double a, double b, bool integer = false) {
  switch (op) {
    case BinaryOp::kAdd:
      return a + b;
    case BinaryOp::kSub:
      return a - b;
    case BinaryOp::kMul:
      return a * b;
    case BinaryOp::kDiv:
      return integer ? std::trunc(a / b) : a / b;
    case BinaryOp::kMaximum:
      return a > b ? a : b;
    case BinaryOp::kMinimum:
      return a < b ? a : b;
    case BinaryOp::kPow:
      return integer ? std::trunc(std::pow(a, b)) : std::pow(a, b);
    case BinaryOp::kSiluBackward: {
      const double s = 1.0 / (1.0 + std::exp(-b));
      return a * s * (1.0 + b * (1.0 - s));
    }
    case BinaryOp::kEq:
      return a == b ? 1.0 : 0.0;
    case BinaryOp::kLt:
      return a < b ? 1.0 : 0.0;
    case BinaryOp::kGt:
      return a > b ? 1.0 : 0.0;
  }
  return a;
}

// Calls fn(linear, offsets) for every element of `sizes` in row-major order,
// with each operand's element offset from its strides.
inline void ForEachElement(const std::vector<int64_t>& sizes,
                           const std::vector<std::vector<int64_t>>& strides,
                           const std::function<void(int64_t, const std::vector<int64_t>&)>& fn) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  std::vector<int64_t> off(strides.size());
  for (int64_t linear = 0; linear < n; ++linear) {
    int64_t rem = linear;
    for (size_t k = 0; k < strides.size(); ++k) off[k] = 0;
    for (int d = int(sizes.size()) - 1; d >= 0; --d) {
      const int64_t i = rem % sizes[d];
      rem /= sizes[d];
      for (size_t k = 0; k < strides.size(); ++k) off[k] += i * strides[k][d];
    }
    fn(linear, off);
  }
}

}  // namespace loom::reference

#endif  // LOOM_KERNELS_CUDA_ELEMENTWISE_REFERENCE_H_
