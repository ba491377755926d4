// Op-harness cases for RmsNorm, plus bf16, rounding and determinism tests.
#include <cmath>
#include <cstring>

#include "gtest/gtest.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"
#include "runtime/testing/op_harness.h"

namespace loom::testing {
namespace {

// weight * x / sqrt(mean(x^2) + eps) over the last dim, in doubles.
RefArray RefRmsNorm(const RefArray& x, const RefArray& w, double eps) {
  const int64_t d = x.sizes.back(), n = x.numel() / d;
  RefArray y(x.sizes);
  for (int64_t r = 0; r < n; ++r) {
    double sum_sq = 0;
    for (int64_t j = 0; j < d; ++j) sum_sq += x.v[size_t(r * d + j)] * x.v[size_t(r * d + j)];
    const double rstd = 1 / std::sqrt(sum_sq / double(d) + eps);
    for (int64_t j = 0; j < d; ++j) {
      y.v[size_t(r * d + j)] = w.v[size_t(j)] * x.v[size_t(r * d + j)] * rstd;
    }
  }
  return y;
}

OpCase Case(std::string name, Dims x_shape, double eps, double x_scale = 1.0) {
  const int64_t d = x_shape.back();
  return {.name = "rmsnorm/" + name,
          .make_inputs =
              [=](DType dt) {
                return Inputs{RandomNormal(x_shape, dt, 1, x_scale),
                              RandomUniform({d}, dt, 2, 0.5, 1.5)};
              },
          .grad_inputs = {0, 1},
          .op = [eps](const Inputs& in) { return Outputs{RmsNorm(in[0], in[1], eps)}; },
          .reference =
              [eps](const RefInputs& in) { return RefOutputs{RefRmsNorm(in[0], in[1], eps)}; }};
}

std::vector<OpCase> MakeCases() {
  std::vector<OpCase> cases = {
      Case("rows", {3, 8}, 1e-6),
      Case("batch_3d", {2, 3, 5}, 1e-5),
      // D = 1 is sign(x) up to eps; a large eps keeps d/dx well above FD noise.
      Case("d1", {4, 1}, 0.5),
      // Small x with a large eps: eps dominates the denominator.
      Case("eps_dominates", {3, 6}, 1e-2, 0.05),
      Case("vector", {7}, 1e-6),
  };
  // A transposed (non-contiguous) x.
  cases.push_back(
      {.name = "rmsnorm/transposed_input",
       .make_inputs =
           [](DType dt) {
             return Inputs{RandomNormal({6, 4}, dt, 3), RandomUniform({6}, dt, 4, 0.5, 1.5)};
           },
       .grad_inputs = {0, 1},
       .op = [](const Inputs& in) { return Outputs{RmsNorm(Transpose(in[0], 0, 1), in[1], 1e-6)}; },
       .reference =
           [](const RefInputs& in) {
             RefArray t({4, 6});
             for (int i = 0; i < 4; ++i)
               for (int j = 0; j < 6; ++j) t.at({i, j}) = in[0].at({j, i});
             return RefOutputs{RefRmsNorm(t, in[1], 1e-6)};
           }});
  return cases;
}

LOOM_REGISTER_OP_CASES(NormCases) { return MakeCases(); }

TEST(RmsNormTest, Bf16MatchesF64) {
  for (const OpCase& c : MakeCases()) ExpectBf16MatchesF64(c, 1e-2, 2e-2);
}

// HF LlamaRMSNorm in bf16: rstd in f32, x * rstd rounded to bf16, then the
// product with the bf16 weight rounded to bf16.
TEST(RmsNormTest, RoundsLikeHuggingFaceInBf16) {
  const int64_t n = 4, d = 32;
  const double eps = 1e-5;
  Tensor x = RandomNormal({n, d}, DType::kBF16, 5, 3.0);
  Tensor w = RandomUniform({d}, DType::kBF16, 6, 0.5, 1.5);
  const std::vector<double> y = RmsNorm(x, w, eps).ToDoubles();
  const std::vector<double> xs = x.ToDoubles(), ws = w.ToDoubles();
  for (int64_t r = 0; r < n; ++r) {
    double sum_sq = 0;
    for (int64_t j = 0; j < d; ++j) sum_sq += xs[size_t(r * d + j)] * xs[size_t(r * d + j)];
    const float rstd = 1.0f / std::sqrt(float(sum_sq / double(d)) + float(eps));
    for (int64_t j = 0; j < d; ++j) {
      const float normed = float(BFloat16(float(xs[size_t(r * d + j)]) * rstd));
      const float want = float(BFloat16(float(ws[size_t(j)]) * normed));
      EXPECT_EQ(y[size_t(r * d + j)], double(want)) << "row " << r << " col " << j;
    }
  }
}

struct NormGrads {
  Tensor gx, gw;
};

NormGrads GradsWithThreads(int threads, DType dtype) {
  const int previous = NumThreads();
  SetNumThreads(threads);
  Tensor x = RandomNormal({300, 256}, dtype, 1).set_requires_grad(true);
  Tensor w = RandomUniform({256}, dtype, 2, 0.5, 1.5).set_requires_grad(true);
  RmsNorm(x, w, 1e-6).Backward(RandomNormal({300, 256}, dtype, 3));
  SetNumThreads(previous);
  return {x.grad(), w.grad()};
}

bool BitwiseEqual(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

TEST(RmsNormTest, BackwardIsBitwiseDeterministicAcrossThreadCounts) {
  for (DType dt : {DType::kF32, DType::kBF16}) {
    const NormGrads one = GradsWithThreads(1, dt);
    for (int threads : {2, 3}) {
      const NormGrads many = GradsWithThreads(threads, dt);
      EXPECT_TRUE(BitwiseEqual(one.gx, many.gx)) << DTypeName(dt) << ", " << threads << " threads";
      EXPECT_TRUE(BitwiseEqual(one.gw, many.gw)) << DTypeName(dt) << ", " << threads << " threads";
    }
  }
}

TEST(RmsNormDeathTest, WeightMustMatchTheLastDim) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      RmsNorm(RandomNormal({2, 4}, DType::kF32, 1), RandomNormal({3}, DType::kF32, 2), 1e-6),
      "RmsNorm: weight must be f32 \\[4\\]");
}

}  // namespace
}  // namespace loom::testing
