// CPU elementwise kernels: copy/cast, fill, unary and binary math, affine.
#include <cmath>
#include <type_traits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace loom::cpu {
namespace {

template <typename C>
inline C ApplyUnary(UnaryOp op, C x) {
  switch (op) {
    case UnaryOp::kNeg: return -x;
    case UnaryOp::kExp: return std::exp(x);
    case UnaryOp::kLog: return std::log(x);
    case UnaryOp::kSqrt: return std::sqrt(x);
    case UnaryOp::kRsqrt: return C(1) / std::sqrt(x);
    case UnaryOp::kAbs: return std::abs(x);
    case UnaryOp::kSigmoid: return C(1) / (C(1) + std::exp(-x));
    case UnaryOp::kSilu: return x / (C(1) + std::exp(-x));
    case UnaryOp::kTanh: return std::tanh(x);
    case UnaryOp::kSquare: return x * x;
    case UnaryOp::kReciprocal: return C(1) / x;
    case UnaryOp::kRelu: return x > C(0) ? x : C(0);
    case UnaryOp::kSin: return std::sin(x);
    case UnaryOp::kCos: return std::cos(x);
  }
  return x;
}

template <typename C>
inline C ApplyBinary(BinaryOp op, C a, C b) {
  switch (op) {
    case BinaryOp::kAdd: return a + b;
    case BinaryOp::kSub: return a - b;
    case BinaryOp::kMul: return a * b;
    case BinaryOp::kDiv: return a / b;
    case BinaryOp::kMaximum: return a > b ? a : b;
    case BinaryOp::kMinimum: return a < b ? a : b;
    case BinaryOp::kPow: return C(std::pow(a, b));
    case BinaryOp::kSiluBackward: {
      const C s = C(1) / (C(1) + std::exp(-b));
      return a * s * (C(1) + b * (C(1) - s));
    }
    case BinaryOp::kEq: return a == b ? C(1) : C(0);
    case BinaryOp::kLt: return a < b ? C(1) : C(0);
    case BinaryOp::kGt: return a > b ? C(1) : C(0);
  }
  return a;
}

// Calls fn(std::integral_constant<Op, op>{}) so that the op is a compile-time
// constant inside the element loop: the switch folds away and the loop
// vectorizes.
template <typename Op, Op... kOps, typename Fn>
void DispatchOp(Op op, Fn&& fn) {
  bool done = ((op == kOps ? (fn(std::integral_constant<Op, kOps>{}), true) : false) || ...);
  LOOM_CHECK(done, "unknown elementwise op %d", int(op));
}

template <typename Fn>
void DispatchUnary(UnaryOp op, Fn&& fn) {
  using U = UnaryOp;
  DispatchOp<U, U::kNeg, U::kExp, U::kLog, U::kSqrt, U::kRsqrt, U::kAbs, U::kSigmoid, U::kSilu,
             U::kTanh, U::kSquare, U::kReciprocal, U::kRelu, U::kSin, U::kCos>(op, fn);
}

template <typename Fn>
void DispatchBinary(BinaryOp op, Fn&& fn) {
  using B = BinaryOp;
  DispatchOp<B, B::kAdd, B::kSub, B::kMul, B::kDiv, B::kMaximum, B::kMinimum, B::kPow,
             B::kSiluBackward, B::kEq, B::kLt, B::kGt>(op, fn);
}

bool IsIntegerSafe(UnaryOp op) {
  return op == UnaryOp::kNeg || op == UnaryOp::kAbs || op == UnaryOp::kSquare || op == UnaryOp::kRelu;
}

}  // namespace

void CpuBackend::Copy(const Tensor& src, const Tensor& out) {
  LOOM_CHECK(src.sizes() == out.sizes(), "Copy: %s into %s", src.ShapeString(), out.ShapeString());
  if (out.numel() == 0) return;
  DispatchDType(src.dtype(), [&](auto stag) {
    using S = decltype(stag);
    DispatchDType(out.dtype(), [&](auto otag) {
      using O = decltype(otag);
      const S* s = static_cast<const S*>(src.raw_data());
      O* o = static_cast<O*>(out.raw_data());
      if (AllContiguous<2>({&src, &out})) {
        ForEachFlat(out.numel(), [&](int64_t b, int64_t e) {
          if constexpr (std::is_same_v<S, O>) {
            std::copy(s + b, s + e, o + b);
          } else {
            for (int64_t i = b; i < e; ++i) o[i] = Store<O>(compute_t<O>(Load(s[i])));
          }
        });
        return;
      }
      ForEachStrided<2>({&out, &src}, [&](const std::array<int64_t, 2>& off) {
        if constexpr (std::is_same_v<S, O>) {
          o[off[0]] = s[off[1]];
        } else {
          o[off[0]] = Store<O>(compute_t<O>(Load(s[off[1]])));
        }
      });
    });
  });
}

void CpuBackend::Fill(const Tensor& out, double value) {
  DispatchDType(out.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T v = FromDouble<T>(value);
    T* o = static_cast<T*>(out.raw_data());
    if (out.is_contiguous()) {
      ForEachFlat(out.numel(), [&](int64_t b, int64_t e) { std::fill(o + b, o + e, v); });
    } else {
      ForEachStrided<1>({&out}, [&](const std::array<int64_t, 1>& off) { o[off[0]] = v; });
    }
  });
}

void CpuBackend::Unary(UnaryOp op, const Tensor& x, const Tensor& out) {
  LOOM_CHECK(x.dtype() == out.dtype() && x.sizes() == out.sizes(), "Unary: %s %s -> %s %s",
             std::string(DTypeName(x.dtype())), x.ShapeString(), std::string(DTypeName(out.dtype())),
             out.ShapeString());
  LOOM_CHECK(IsFloating(x.dtype()) || IsIntegerSafe(op), "Unary op %d needs a floating dtype, got %s",
             int(op), std::string(DTypeName(x.dtype())));
  DispatchArithmetic(x.dtype(), "Unary", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* xs = static_cast<const T*>(x.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    DispatchUnary(op, [&](auto kOp) {
      if (AllContiguous<2>({&x, &out})) {
        ForEachFlat(out.numel(), [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) o[i] = Store<T>(ApplyUnary<C>(kOp(), Load(xs[i])));
        });
        return;
      }
      ForEachStrided<2>({&out, &x}, [&](const std::array<int64_t, 2>& off) {
        o[off[0]] = Store<T>(ApplyUnary<C>(kOp(), Load(xs[off[1]])));
      });
    });
  });
}

void CpuBackend::Binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  LOOM_CHECK(a.dtype() == out.dtype() && b.dtype() == out.dtype(), "Binary: dtypes %s, %s -> %s",
             std::string(DTypeName(a.dtype())), std::string(DTypeName(b.dtype())),
             std::string(DTypeName(out.dtype())));
  LOOM_CHECK(a.sizes() == out.sizes() && b.sizes() == out.sizes(), "Binary: shapes %s, %s -> %s",
             a.ShapeString(), b.ShapeString(), out.ShapeString());
  DispatchArithmetic(out.dtype(), "Binary", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* as = static_cast<const T*>(a.raw_data());
    const T* bs = static_cast<const T*>(b.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    DispatchBinary(op, [&](auto kOp) {
      if (AllContiguous<3>({&a, &b, &out})) {
        ForEachFlat(out.numel(), [&](int64_t s, int64_t e) {
          for (int64_t i = s; i < e; ++i) {
            o[i] = Store<T>(ApplyBinary<C>(kOp(), Load(as[i]), Load(bs[i])));
          }
        });
        return;
      }
      ForEachStridedRow<3>({&out, &a, &b}, [&](const std::array<int64_t, 3>& base,
                                               const std::array<int64_t, 3>& st, int64_t n) {
        T* po = o + base[0];
        const T* pa = as + base[1];
        const T* pb = bs + base[2];
        auto f = [&](C x, C y) { return Store<T>(ApplyBinary<C>(kOp(), x, y)); };
        if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
          for (int64_t i = 0; i < n; ++i) po[i] = f(Load(pa[i]), Load(pb[i]));
        } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
          const C y = Load(pb[0]);
          for (int64_t i = 0; i < n; ++i) po[i] = f(Load(pa[i]), y);
        } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
          const C x = Load(pa[0]);
          for (int64_t i = 0; i < n; ++i) po[i] = f(x, Load(pb[i]));
        } else {
          for (int64_t i = 0; i < n; ++i) po[i * st[0]] = f(Load(pa[i * st[1]]), Load(pb[i * st[2]]));
        }
      });
    });
  });
}

void CpuBackend::Affine(const Tensor& x, double alpha, double beta, const Tensor& out) {
  LOOM_CHECK(x.dtype() == out.dtype() && x.sizes() == out.sizes(), "Affine: %s into %s",
             x.ShapeString(), out.ShapeString());
  DispatchArithmetic(x.dtype(), "Affine", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* xs = static_cast<const T*>(x.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    const C al = C(alpha), be = C(beta);
    if (AllContiguous<2>({&x, &out})) {
      ForEachFlat(out.numel(), [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) o[i] = Store<T>(C(al * Load(xs[i]) + be));
      });
      return;
    }
    ForEachStrided<2>({&out, &x}, [&](const std::array<int64_t, 2>& off) {
      o[off[0]] = Store<T>(C(al * Load(xs[off[1]]) + be));
    });
  });
}

void CpuBackend::PowScalar(const Tensor& x, double exponent, const Tensor& out) {
  LOOM_CHECK(x.dtype() == out.dtype() && x.sizes() == out.sizes(), "PowScalar: %s into %s",
             x.ShapeString(), out.ShapeString());
  DispatchFloating(x.dtype(), "PowScalar", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* xs = static_cast<const T*>(x.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    const C p = C(exponent);
    ForEachStrided<2>({&out, &x}, [&](const std::array<int64_t, 2>& off) {
      o[off[0]] = Store<T>(C(std::pow(Load(xs[off[1]]), p)));
    });
  });
}

}  // namespace loom::cpu
