// Differentiable elementwise math with NumPy broadcasting. Both operands of a
// binary op must have the same dtype (cast explicitly with Cast).
#ifndef LOOM_RUNTIME_OPS_ELEMENTWISE_H_
#define LOOM_RUNTIME_OPS_ELEMENTWISE_H_

#include "runtime/tensor.h"

namespace loom {

Tensor Add(const Tensor& a, const Tensor& b);
Tensor Sub(const Tensor& a, const Tensor& b);
Tensor Mul(const Tensor& a, const Tensor& b);
Tensor Div(const Tensor& a, const Tensor& b);
Tensor Maximum(const Tensor& a, const Tensor& b);
Tensor Minimum(const Tensor& a, const Tensor& b);

Tensor Neg(const Tensor& x);
Tensor Exp(const Tensor& x);
Tensor Log(const Tensor& x);
Tensor Sqrt(const Tensor& x);
Tensor Rsqrt(const Tensor& x);
Tensor Abs(const Tensor& x);
Tensor Sigmoid(const Tensor& x);
Tensor Silu(const Tensor& x);
Tensor Tanh(const Tensor& x);
Tensor Square(const Tensor& x);
Tensor Reciprocal(const Tensor& x);
Tensor Relu(const Tensor& x);
Tensor Sin(const Tensor& x);
Tensor Cos(const Tensor& x);

Tensor AddScalar(const Tensor& x, double s);
Tensor MulScalar(const Tensor& x, double s);
Tensor PowScalar(const Tensor& x, double exponent);

// Not differentiable: 1 where the relation holds, else 0, in the operands' dtype.
Tensor Eq(const Tensor& a, const Tensor& b);
Tensor Lt(const Tensor& a, const Tensor& b);
Tensor Gt(const Tensor& a, const Tensor& b);

// In place, no autograd (optimizer updates, gradient clipping): x = alpha * x + beta.
void AffineInPlace(const Tensor& x, double alpha, double beta = 0.0);
// dst = src (cast and broadcast as needed), no autograd.
void CopyInto(const Tensor& dst, const Tensor& src);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return Add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return Sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return Mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return Div(a, b); }
inline Tensor operator-(const Tensor& x) { return Neg(x); }
inline Tensor operator+(const Tensor& x, double s) { return AddScalar(x, s); }
inline Tensor operator-(const Tensor& x, double s) { return AddScalar(x, -s); }
inline Tensor operator*(const Tensor& x, double s) { return MulScalar(x, s); }
inline Tensor operator/(const Tensor& x, double s) { return MulScalar(x, 1.0 / s); }
inline Tensor operator*(double s, const Tensor& x) { return MulScalar(x, s); }

}  // namespace loom

#endif  // LOOM_RUNTIME_OPS_ELEMENTWISE_H_
