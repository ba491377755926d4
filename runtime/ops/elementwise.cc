#include "runtime/ops/elementwise.h"

#include "runtime/autograd/function.h"
#include "runtime/backend.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

using autograd::BackwardContext;
using autograd::RecordFunction;
using Grads = std::vector<Tensor>;

void CheckSameDtypeDevice(const char* op, const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dtype() == b.dtype(), "%s: dtypes differ (%s vs %s); Cast one first", op,
             std::string(DTypeName(a.dtype())), std::string(DTypeName(b.dtype())));
  LOOM_CHECK(a.device() == b.device(), "%s: devices differ (%s vs %s)", op, a.device().ToString(),
             b.device().ToString());
}

// Computes op(a, b) with broadcasting, without autograd.
Tensor BinaryKernel(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  CheckSameDtypeDevice(name, a, b);
  const Dims shape = BroadcastShapes(a.sizes(), b.sizes());
  Tensor out = Tensor::Empty(shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  Tensor ea = a.sizes() == shape ? a : Expand(a.Detach(), shape);
  Tensor eb = b.sizes() == shape ? b : Expand(b.Detach(), shape);
  GetBackend(a.device()).Binary(op, ea, eb, out);
  return out;
}

Tensor UnaryKernel(UnaryOp op, const Tensor& x) {
  Tensor out = Tensor::Empty(x.sizes(), x.dtype(), x.device());
  if (out.numel() > 0) GetBackend(x.device()).Unary(op, x, out);
  return out;
}

// Records y = f(x) whose backward is g * dfdx(x, y).
template <typename Deriv>
Tensor UnaryWithGrad(UnaryOp op, const char* name, const Tensor& x, Deriv deriv) {
  Tensor y = UnaryKernel(op, x);
  if (autograd::NeedsGrad({&x})) {
    RecordFunction(name, {x}, {y},
                   [x, y = y.Detach(), deriv](BackwardContext&, Grads g) -> Grads {
                     return {Mul(g[0], deriv(x, y))};
                   });
  }
  return y;
}

}  // namespace

Tensor Add(const Tensor& a, const Tensor& b) {
  Tensor out = BinaryKernel(BinaryOp::kAdd, "Add", a, b);
  RecordFunction("AddBackward", {a, b}, {out},
                 [sa = a.sizes(), sb = b.sizes()](BackwardContext& ctx, Grads g) -> Grads {
                   return {ctx.needs_input_grad(0) ? SumToShape(g[0], sa) : Tensor(),
                           ctx.needs_input_grad(1) ? SumToShape(g[0], sb) : Tensor()};
                 });
  return out;
}

Tensor Sub(const Tensor& a, const Tensor& b) {
  Tensor out = BinaryKernel(BinaryOp::kSub, "Sub", a, b);
  RecordFunction("SubBackward", {a, b}, {out},
                 [sa = a.sizes(), sb = b.sizes()](BackwardContext& ctx, Grads g) -> Grads {
                   return {ctx.needs_input_grad(0) ? SumToShape(g[0], sa) : Tensor(),
                           ctx.needs_input_grad(1) ? SumToShape(Neg(g[0]), sb) : Tensor()};
                 });
  return out;
}

Tensor Mul(const Tensor& a, const Tensor& b) {
  Tensor out = BinaryKernel(BinaryOp::kMul, "Mul", a, b);
  if (autograd::NeedsGrad({&a, &b})) {
    RecordFunction("MulBackward", {a, b}, {out}, [a, b](BackwardContext& ctx, Grads g) -> Grads {
      return {ctx.needs_input_grad(0) ? SumToShape(Mul(g[0], b), a.sizes()) : Tensor(),
              ctx.needs_input_grad(1) ? SumToShape(Mul(g[0], a), b.sizes()) : Tensor()};
    });
  }
  return out;
}

Tensor Div(const Tensor& a, const Tensor& b) {
  Tensor out = BinaryKernel(BinaryOp::kDiv, "Div", a, b);
  if (autograd::NeedsGrad({&a, &b})) {
    RecordFunction("DivBackward", {a, b}, {out}, [a, b](BackwardContext& ctx, Grads g) -> Grads {
      Tensor ga, gb;
      if (ctx.needs_input_grad(0)) ga = SumToShape(Div(g[0], b), a.sizes());
      if (ctx.needs_input_grad(1)) gb = SumToShape(Neg(Div(Mul(g[0], a), Mul(b, b))), b.sizes());
      return {ga, gb};
    });
  }
  return out;
}

// Gradient goes to the larger (smaller) operand; ties split it evenly.
static Tensor MinMax(bool is_max, const Tensor& a, const Tensor& b) {
  Tensor out = BinaryKernel(is_max ? BinaryOp::kMaximum : BinaryOp::kMinimum,
                            is_max ? "Maximum" : "Minimum", a, b);
  if (autograd::NeedsGrad({&a, &b})) {
    RecordFunction(is_max ? "MaximumBackward" : "MinimumBackward", {a, b}, {out},
                   [a, b, is_max](BackwardContext& ctx, Grads g) -> Grads {
                     Tensor wins_a = is_max ? Gt(a, b) : Lt(a, b);
                     Tensor ties = Eq(a, b);
                     Tensor wa = Add(wins_a, MulScalar(ties, 0.5));
                     Tensor wb = AddScalar(Neg(wa), 1.0);
                     return {ctx.needs_input_grad(0) ? SumToShape(Mul(g[0], wa), a.sizes()) : Tensor(),
                             ctx.needs_input_grad(1) ? SumToShape(Mul(g[0], wb), b.sizes()) : Tensor()};
                   });
  }
  return out;
}

Tensor Maximum(const Tensor& a, const Tensor& b) { return MinMax(true, a, b); }
Tensor Minimum(const Tensor& a, const Tensor& b) { return MinMax(false, a, b); }

Tensor Neg(const Tensor& x) {
  Tensor y = UnaryKernel(UnaryOp::kNeg, x);
  RecordFunction("NegBackward", {x}, {y},
                 [](BackwardContext&, Grads g) -> Grads { return {Neg(g[0])}; });
  return y;
}

Tensor Exp(const Tensor& x) {
  return UnaryWithGrad(UnaryOp::kExp, "ExpBackward", x, [](const Tensor&, const Tensor& y) { return y; });
}
Tensor Log(const Tensor& x) {
  return UnaryWithGrad(UnaryOp::kLog, "LogBackward", x,
                       [](const Tensor& x, const Tensor&) { return Reciprocal(x); });
}
Tensor Sqrt(const Tensor& x) {
  return UnaryWithGrad(UnaryOp::kSqrt, "SqrtBackward", x,
                       [](const Tensor&, const Tensor& y) { return MulScalar(Reciprocal(y), 0.5); });
}
Tensor Rsqrt(const Tensor& x) {
  // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
  return UnaryWithGrad(UnaryOp::kRsqrt, "RsqrtBackward", x, [](const Tensor&, const Tensor& y) {
    return MulScalar(Mul(Mul(y, y), y), -0.5);
  });
}
Tensor Abs(const Tensor& x) {
  return UnaryWithGrad(UnaryOp::kAbs, "AbsBackward", x, [](const Tensor& x, const Tensor&) {
    Tensor zero = Tensor::Zeros({}, x.dtype(), x.device());
    return Sub(Gt(x, zero), Lt(x, zero));
  });
}
Tensor Sigmoid(const Tensor& x) {
  return UnaryWithGrad(UnaryOp::kSigmoid, "SigmoidBackward", x, [](const Tensor&, const Tensor& y) {
    return Mul(y, AddScalar(Neg(y), 1.0));
  });
}
Tensor Silu(const Tensor& x) {
  Tensor y = UnaryKernel(UnaryOp::kSilu, x);
  if (autograd::NeedsGrad({&x})) {
    RecordFunction("SiluBackward", {x}, {y}, [x](BackwardContext&, Grads g) -> Grads {
      Tensor gx = Tensor::Empty(x.sizes(), x.dtype(), x.device());
      GetBackend(x.device()).Binary(BinaryOp::kSiluBackward, Contiguous(g[0]), x, gx);
      return {gx};
    });
  }
  return y;
}
Tensor Tanh(const Tensor& x) {
  return UnaryWithGrad(UnaryOp::kTanh, "TanhBackward", x, [](const Tensor&, const Tensor& y) {
    return AddScalar(Neg(Mul(y, y)), 1.0);
  });
}
Tensor Square(const Tensor& x) {
  return UnaryWithGrad(UnaryOp::kSquare, "SquareBackward", x,
                       [](const Tensor& x, const Tensor&) { return MulScalar(x, 2.0); });
}
Tensor Reciprocal(const Tensor& x) {
  return UnaryWithGrad(UnaryOp::kReciprocal, "ReciprocalBackward", x,
                       [](const Tensor&, const Tensor& y) { return Neg(Mul(y, y)); });
}
Tensor Relu(const Tensor& x) {
  return UnaryWithGrad(UnaryOp::kRelu, "ReluBackward", x, [](const Tensor& x, const Tensor&) {
    return Gt(x, Tensor::Zeros({}, x.dtype(), x.device()));
  });
}
Tensor Sin(const Tensor& x) {
  return UnaryWithGrad(UnaryOp::kSin, "SinBackward", x, [](const Tensor& x, const Tensor&) { return Cos(x); });
}
Tensor Cos(const Tensor& x) {
  return UnaryWithGrad(UnaryOp::kCos, "CosBackward", x,
                       [](const Tensor& x, const Tensor&) { return Neg(Sin(x)); });
}

Tensor AddScalar(const Tensor& x, double s) {
  Tensor y = Tensor::Empty(x.sizes(), x.dtype(), x.device());
  if (y.numel() > 0) GetBackend(x.device()).Affine(x, 1.0, s, y);
  RecordFunction("AddScalarBackward", {x}, {y},
                 [](BackwardContext&, Grads g) -> Grads { return {g[0]}; });
  return y;
}

Tensor MulScalar(const Tensor& x, double s) {
  Tensor y = Tensor::Empty(x.sizes(), x.dtype(), x.device());
  if (y.numel() > 0) GetBackend(x.device()).Affine(x, s, 0.0, y);
  RecordFunction("MulScalarBackward", {x}, {y},
                 [s](BackwardContext&, Grads g) -> Grads { return {MulScalar(g[0], s)}; });
  return y;
}

Tensor PowScalar(const Tensor& x, double exponent) {
  Tensor y = Tensor::Empty(x.sizes(), x.dtype(), x.device());
  if (y.numel() > 0) GetBackend(x.device()).PowScalar(x, exponent, y);
  if (autograd::NeedsGrad({&x})) {
    RecordFunction("PowScalarBackward", {x}, {y}, [x, exponent](BackwardContext&, Grads g) -> Grads {
      return {Mul(g[0], MulScalar(PowScalar(x, exponent - 1.0), exponent))};
    });
  }
  return y;
}

Tensor Eq(const Tensor& a, const Tensor& b) { return BinaryKernel(BinaryOp::kEq, "Eq", a, b); }
Tensor Lt(const Tensor& a, const Tensor& b) { return BinaryKernel(BinaryOp::kLt, "Lt", a, b); }
Tensor Gt(const Tensor& a, const Tensor& b) { return BinaryKernel(BinaryOp::kGt, "Gt", a, b); }

void AffineInPlace(const Tensor& x, double alpha, double beta) {
  LOOM_CHECK(!(GradMode::IsEnabled() && x.requires_grad()),
             "AffineInPlace on a tensor that requires grad; use NoGradGuard");
  if (x.numel() > 0) GetBackend(x.device()).Affine(x, alpha, beta, x);
}

void CopyInto(const Tensor& dst, const Tensor& src) {
  LOOM_CHECK(!(GradMode::IsEnabled() && dst.requires_grad()),
             "CopyInto a tensor that requires grad; use NoGradGuard");
  LOOM_CHECK(src.device() == dst.device(), "CopyInto: %s from %s", dst.device().ToString(),
             src.device().ToString());
  Tensor s = src.sizes() == dst.sizes() ? src : Expand(src.Detach(), dst.sizes());
  if (dst.numel() > 0) GetBackend(dst.device()).Copy(s, dst);
}

}  // namespace loom
