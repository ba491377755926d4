// Op-harness cases for elementwise ops (see runtime/testing/op_harness.h).
#include <cmath>

#include "runtime/ops/ops.h"
#include "runtime/testing/op_harness.h"

namespace loom::testing {
namespace {

// A reference for a broadcasting binary op.
RefOutputs RefBinary(const RefInputs& in, const std::function<double(double, double)>& f) {
  const Dims shape = BroadcastShapes(in[0].sizes, in[1].sizes);
  RefArray out(shape);
  const int nd = int(shape.size());
  for (int64_t i = 0; i < out.numel(); ++i) {
    int64_t rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t idx = rem % shape[d];
      rem /= shape[d];
      const int da = d - (nd - int(in[0].sizes.size())), db = d - (nd - int(in[1].sizes.size()));
      if (da >= 0) {
        if (in[0].sizes[da] != 1) ia += idx * sa;
        sa *= in[0].sizes[da];
      }
      if (db >= 0) {
        if (in[1].sizes[db] != 1) ib += idx * sb;
        sb *= in[1].sizes[db];
      }
    }
    out.v[i] = f(in[0].v[ia], in[1].v[ib]);
  }
  return {out};
}

RefOutputs RefUnary(const RefInputs& in, const std::function<double(double)>& f) {
  RefArray out(in[0].sizes);
  for (int64_t i = 0; i < out.numel(); ++i) out.v[i] = f(in[0].v[i]);
  return {out};
}

OpCase Binary(std::string name, Dims a, Dims b, Tensor (*op)(const Tensor&, const Tensor&),
              std::function<double(double, double)> f, bool positive_b = false) {
  return {.name = "elementwise/" + name,
          .make_inputs =
              [a, b, positive_b](DType dt) {
                return Inputs{RandomNormal(a, dt, 1),
                              positive_b ? RandomUniform(b, dt, 2, 0.5, 2.0) : RandomNormal(b, dt, 2)};
              },
          .grad_inputs = {0, 1},
          .op = [op](const Inputs& in) { return Outputs{op(in[0], in[1])}; },
          .reference = [f](const RefInputs& in) { return RefBinary(in, f); }};
}

OpCase Unary(std::string name, Tensor (*op)(const Tensor&), std::function<double(double)> f,
             double low = -2.0, double high = 2.0) {
  return {.name = "elementwise/" + name,
          .make_inputs = [low, high](DType dt) { return Inputs{RandomUniform({3, 7}, dt, 3, low, high)}; },
          .grad_inputs = {0},
          .op = [op](const Inputs& in) { return Outputs{op(in[0])}; },
          .reference = [f](const RefInputs& in) { return RefUnary(in, f); }};
}

LOOM_REGISTER_OP_CASES(ElementwiseCases) {
  std::vector<OpCase> cases = {
      Binary("add", {4, 5}, {4, 5}, Add, [](double x, double y) { return x + y; }),
      Binary("add_broadcast", {2, 1, 5}, {3, 1}, Add, [](double x, double y) { return x + y; }),
      Binary("sub_broadcast", {4, 5}, {5}, Sub, [](double x, double y) { return x - y; }),
      Binary("mul_broadcast", {2, 3, 4}, {1, 3, 1}, Mul, [](double x, double y) { return x * y; }),
      Binary("div", {3, 4}, {3, 4}, Div, [](double x, double y) { return x / y; }, true),
      Binary("maximum", {3, 4}, {4}, Maximum, [](double x, double y) { return std::max(x, y); }),
      Binary("minimum", {3, 4}, {3, 1}, Minimum, [](double x, double y) { return std::min(x, y); }),
      Unary("neg", Neg, [](double x) { return -x; }),
      Unary("exp", Exp, [](double x) { return std::exp(x); }),
      Unary("log", Log, [](double x) { return std::log(x); }, 0.5, 3.0),
      Unary("sqrt", Sqrt, [](double x) { return std::sqrt(x); }, 0.5, 3.0),
      Unary("rsqrt", Rsqrt, [](double x) { return 1 / std::sqrt(x); }, 0.5, 3.0),
      Unary("abs", Abs, [](double x) { return std::abs(x); }),
      Unary("sigmoid", Sigmoid, [](double x) { return 1 / (1 + std::exp(-x)); }),
      Unary("silu", Silu, [](double x) { return x / (1 + std::exp(-x)); }),
      Unary("tanh", Tanh, [](double x) { return std::tanh(x); }),
      Unary("square", Square, [](double x) { return x * x; }),
      Unary("reciprocal", Reciprocal, [](double x) { return 1 / x; }, 0.5, 3.0),
      Unary("relu", Relu, [](double x) { return x > 0 ? x : 0; }),
      Unary("sin", Sin, [](double x) { return std::sin(x); }),
      Unary("cos", Cos, [](double x) { return std::cos(x); }),
  };
  cases.push_back({.name = "elementwise/scalar_affine_pow",
                   .make_inputs = [](DType dt) { return Inputs{RandomUniform({2, 6}, dt, 4, 0.5, 2.0)}; },
                   .grad_inputs = {0},
                   .op = [](const Inputs& in) {
                     return Outputs{PowScalar(AddScalar(MulScalar(in[0], 3.0), 0.25), 1.5)};
                   },
                   .reference = [](const RefInputs& in) {
                     return RefUnary(in, [](double x) { return std::pow(3 * x + 0.25, 1.5); });
                   }});
  // A strided (transposed) operand exercises the general iteration path.
  cases.push_back({.name = "elementwise/mul_transposed",
                   .make_inputs = [](DType dt) { return Inputs{RandomNormal({5, 3}, dt, 5), RandomNormal({3, 5}, dt, 6)}; },
                   .grad_inputs = {0, 1},
                   .op = [](const Inputs& in) { return Outputs{Mul(Transpose(in[0], 0, 1), in[1])}; },
                   .reference = [](const RefInputs& in) {
                     RefArray out({3, 5});
                     for (int i = 0; i < 3; ++i)
                       for (int j = 0; j < 5; ++j) out.at({i, j}) = in[0].at({j, i}) * in[1].at({i, j});
                     return RefOutputs{out};
                   }});
  return cases;
}

}  // namespace
}  // namespace loom::testing
