// Op-harness cases for Softmax and LogSoftmax, plus bf16 and masking tests.
#include <cmath>
#include <limits>

#include "gtest/gtest.h"
#include "runtime/ops/ops.h"
#include "runtime/testing/op_harness.h"

namespace loom::testing {
namespace {

// Softmax (or log-softmax) of `x` along `dim`, in doubles with the max subtracted.
RefArray RefSoftmax(const RefArray& x, int dim, bool log) {
  const int nd = int(x.sizes.size());
  const int d = dim < 0 ? dim + nd : dim;
  int64_t outer = 1, inner = 1;
  for (int k = 0; k < d; ++k) outer *= x.sizes[k];
  for (int k = d + 1; k < nd; ++k) inner *= x.sizes[k];
  const int64_t len = x.sizes[d];
  RefArray y(x.sizes);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return size_t((o * len + j) * inner + i); };
      double mx = -INFINITY;
      for (int64_t j = 0; j < len; ++j) mx = std::max(mx, x.v[at(j)]);
      double sum = 0;
      for (int64_t j = 0; j < len; ++j) sum += std::exp(x.v[at(j)] - mx);
      for (int64_t j = 0; j < len; ++j) {
        y.v[at(j)] = log ? x.v[at(j)] - mx - std::log(sum) : std::exp(x.v[at(j)] - mx) / sum;
      }
    }
  }
  return y;
}

// Normal values, with `offset` added to row `row` of a [rows, cols] tensor.
Tensor RowsWithOffset(int64_t rows, int64_t cols, int64_t row, double offset, DType dt,
                      uint64_t seed) {
  std::vector<double> v = RandomNormal({rows, cols}, DType::kF64, seed).ToDoubles();
  for (int64_t j = 0; j < cols; ++j) v[size_t(row * cols + j)] += offset;
  return Tensor::FromDoubles(v, {rows, cols}, dt);
}

OpCase Case(std::string name, std::function<Tensor(DType)> make, int dim, bool log) {
  return {.name = std::string(log ? "log_softmax/" : "softmax/") + name,
          .make_inputs = [make](DType dt) { return Inputs{make(dt)}; },
          .grad_inputs = {0},
          .op =
              [dim, log](const Inputs& in) {
                return Outputs{log ? LogSoftmax(in[0], dim) : Softmax(in[0], dim)};
              },
          .reference =
              [dim, log](const RefInputs& in) { return RefOutputs{RefSoftmax(in[0], dim, log)}; }};
}

std::vector<OpCase> MakeCases() {
  std::vector<OpCase> cases;
  for (bool log : {false, true}) {
    // Row 1 is near +1000 and row 2 near -1000: exp() of them would overflow
    // or underflow without the max subtraction.
    cases.push_back(Case(
        "rows_large_values",
        [](DType dt) {
          std::vector<double> v = RowsWithOffset(4, 7, 1, 1000.0, DType::kF64, 1).ToDoubles();
          for (int j = 0; j < 7; ++j) v[size_t(2 * 7 + j)] -= 1000.0;
          return Tensor::FromDoubles(v, {4, 7}, dt);
        },
        -1, log));
    cases.push_back(Case(
        "dim0",
        [](DType dt) {
          return RandomNormal({5, 3}, dt, 2);
        },
        0, log));
    cases.push_back(Case(
        "middle_dim_3d",
        [](DType dt) {
          return RandomNormal({2, 3, 4}, dt, 3, 2.0);
        },
        1, log));
    cases.push_back(Case(
        "one_column",
        [](DType dt) {
          return RandomNormal({3, 1}, dt, 4);
        },
        -1, log));
    cases.push_back(Case(
        "vector", [](DType dt) { return RandomNormal({9}, dt, 5); }, 0, log));
  }
  // A transposed (non-contiguous) input along the last dim.
  cases.push_back({.name = "softmax/transposed_input",
                   .make_inputs =
                       [](DType dt) {
                         return Inputs{RandomNormal({6, 4}, dt, 6)};
                       },
                   .grad_inputs = {0},
                   .op = [](const Inputs& in) { return Outputs{Softmax(Transpose(in[0], 0, 1))}; },
                   .reference =
                       [](const RefInputs& in) {
                         RefArray t({4, 6});
                         for (int i = 0; i < 4; ++i)
                           for (int j = 0; j < 6; ++j) t.at({i, j}) = in[0].at({j, i});
                         return RefOutputs{RefSoftmax(t, -1, false)};
                       }});
  return cases;
}

LOOM_REGISTER_OP_CASES(SoftmaxCases) { return MakeCases(); }

TEST(SoftmaxTest, Bf16MatchesF64) {
  for (const OpCase& c : MakeCases()) ExpectBf16MatchesF64(c, 1e-2, 2e-2);
}

// -inf entries (masked positions) get probability 0 and no gradient.
TEST(SoftmaxTest, MaskedEntriesGetZero) {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {DType::kF32, DType::kF64, DType::kBF16}) {
    Tensor x = Tensor::FromDoubles({0.5, -inf, 1.5, -inf, 2.0, 0.0}, {2, 3}, dt);
    x.set_requires_grad(true);
    Tensor y = Softmax(x);
    const std::vector<double> got = y.ToDoubles();
    const double e = std::exp(1.0);
    const std::vector<double> want = {1 / (1 + e),    0, e / (1 + e), 0, e * e / (e * e + 1),
                                      1 / (e * e + 1)};
    EXPECT_LE(RelativeError(got, want), dt == DType::kBF16 ? 1e-2 : 1e-6) << DTypeName(dt);
    Sum(Mul(y, Tensor::FromDoubles({1, 2, 3, 4, 5, 6}, {2, 3}, dt))).Backward();
    const std::vector<double> gx = x.grad().ToDoubles();
    EXPECT_EQ(gx[1], 0.0);
    EXPECT_EQ(gx[3], 0.0);
    // Log-softmax of a masked entry is -inf.
    EXPECT_EQ(LogSoftmax(x.Detach()).ToDoubles()[1], -inf);
  }
}

}  // namespace
}  // namespace loom::testing
