// The math of every UnaryOp and BinaryOp in the compute type, as device
// functions of the elementwise kernels (elementwise.cu), with the formulas of
// kernels/cpu/elementwise.cc. (elementwise_reference.h is written separately,
// in double, so that a wrong formula here shows up in the tests.)
//
//   const float y = ApplyUnary(UnaryOp::kSilu, x);
//
// With a compile-time `op` the switch folds away.
#ifndef LOOM_KERNELS_CUDA_ELEMENTWISE_OPS_H_
#define LOOM_KERNELS_CUDA_ELEMENTWISE_OPS_H_

#include <type_traits>

#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_types.h"
#include "runtime/backend.h"

namespace loom::LOOM_CUDA_NAMESPACE {

// Integer tensors support only the ops that stay integers.
__host__ __device__ constexpr bool IsIntegerUnary(UnaryOp op) {
  return op == UnaryOp::kNeg || op == UnaryOp::kAbs || op == UnaryOp::kSquare ||
         op == UnaryOp::kRelu;
}

template <typename C>
__device__ __forceinline__ C ApplyUnary(UnaryOp op, C x) {
  if constexpr (std::is_integral_v<C>) {
    switch (op) {
      case UnaryOp::kNeg:
        return C(-x);
      case UnaryOp::kAbs:
        return x < C(0) ? C(-x) : x;
      case UnaryOp::kSquare:
        return C(x * x);
      case UnaryOp::kRelu:
        return x > C(0) ? x : C(0);
      default:
        return x;  // rejected by the launcher
    }
  } else {
    switch (op) {
      case UnaryOp::kNeg:
        return -x;
      case UnaryOp::kExp:
        return Exp(x);
      case UnaryOp::kLog:
        return Log(x);
      case UnaryOp::kSqrt:
        return Sqrt(x);
      case UnaryOp::kRsqrt:
        return C(1) / Sqrt(x);  // not rsqrtf: it is approximate
      case UnaryOp::kAbs:
        return Abs(x);
      case UnaryOp::kSigmoid:
        return C(1) / (C(1) + Exp(-x));
      case UnaryOp::kSilu:
        return x / (C(1) + Exp(-x));
      case UnaryOp::kTanh:
        return Tanh(x);
      case UnaryOp::kSquare:
        return x * x;
      case UnaryOp::kReciprocal:
        return C(1) / x;
      case UnaryOp::kRelu:
        return x > C(0) ? x : C(0);
      case UnaryOp::kSin:
        return Sin(x);
      case UnaryOp::kCos:
        return Cos(x);
    }
    return x;
  }
}

template <typename C>
__device__ __forceinline__ C ApplyBinary(BinaryOp op, C a, C b) {
  switch (op) {
    case BinaryOp::kAdd:
      return C(a + b);
    case BinaryOp::kSub:
      return C(a - b);
    case BinaryOp::kMul:
      return C(a * b);
    case BinaryOp::kDiv:
      return C(a / b);
    case BinaryOp::kMaximum:
      return a > b ? a : b;
    case BinaryOp::kMinimum:
      return a < b ? a : b;
    case BinaryOp::kPow:
      if constexpr (std::is_integral_v<C>) {
        return C(pow(double(a), double(b)));
      } else {
        return Pow(a, b);
      }
    case BinaryOp::kSiluBackward:
      if constexpr (std::is_integral_v<C>) {
        return C(0);  // rejected for integers by the launcher
      } else {
        const C s = C(1) / (C(1) + Exp(-b));
        return a * s * (C(1) + b * (C(1) - s));
      }
    case BinaryOp::kEq:
      return a == b ? C(1) : C(0);
    case BinaryOp::kLt:
      return a < b ? C(1) : C(0);
    case BinaryOp::kGt:
      return a > b ? C(1) : C(0);
  }
  return a;
}

// alpha * x + beta, each operation rounded separately (no FMA contraction),
// as the CPU computes it.
template <typename C>
__device__ __forceinline__ C ApplyAffine(C alpha, C x, C beta) {
  if constexpr (std::is_same_v<C, float>) {
    return __fadd_rn(__fmul_rn(alpha, x), beta);
  } else if constexpr (std::is_same_v<C, double>) {
    return __dadd_rn(__dmul_rn(alpha, x), beta);
  } else {
    return C(alpha * x + beta);
  }
}

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_ELEMENTWISE_OPS_H_
