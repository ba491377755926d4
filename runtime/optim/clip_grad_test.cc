// Gradient-norm clipping against norms known in closed form.
#include "runtime/optim/clip_grad.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/parallel.h"

namespace loom {
namespace {

Tensor ParamWithGrad(const std::vector<double>& grad, DimsRef sizes, DType dtype) {
  Tensor p = Tensor::Zeros(sizes, dtype);
  p.set_requires_grad(true);
  p.set_grad(Tensor::FromDoubles(grad, sizes, dtype));
  return p;
}

TEST(ClipGradTest, NormOfAllGradsTogether) {
  // 3-4-12-84 make a chain of Pythagorean quadruples: sqrt(9+16+144+7056) = 85.
  std::vector<Tensor> params = {ParamWithGrad({3, 4}, {2}, DType::kF32),
                                ParamWithGrad({12}, {1, 1}, DType::kF64),
                                ParamWithGrad({0, 84, 0, 0}, {2, 2}, DType::kBF16)};
  EXPECT_EQ(GradSumOfSquares(params), 7225.0);
  EXPECT_EQ(GlobalGradNorm(params), 85.0);
}

TEST(ClipGradTest, ScalesByMaxNormOverNormWhenAbove) {
  std::vector<Tensor> params = {ParamWithGrad({3, 4}, {2}, DType::kF64),
                                ParamWithGrad({12}, {1}, DType::kF64)};
  const double norm = ClipGradNorm(params, 6.5);
  EXPECT_EQ(norm, 13.0);  // returned before clipping
  const double coef = 6.5 / (13.0 + 1e-6);
  EXPECT_EQ(params[0].grad().ToDoubles(), (std::vector<double>{3 * coef, 4 * coef}));
  EXPECT_EQ(params[1].grad().ToDoubles(), (std::vector<double>{12 * coef}));
  EXPECT_NEAR(GlobalGradNorm(params), 6.5, 1e-6);
}

TEST(ClipGradTest, ScalesF32GradsInPlace) {
  Tensor p = ParamWithGrad({-6, 8}, {2}, DType::kF32);
  const Tensor grad = p.grad();
  EXPECT_EQ(ClipGradNorm({p}, 1.0), 10.0);
  EXPECT_TRUE(p.grad().is_same(grad));
  EXPECT_NEAR(grad.ToDoubles()[0], -6 / (10 + 1e-6), 1e-7);
  EXPECT_NEAR(grad.ToDoubles()[1], 8 / (10 + 1e-6), 1e-7);
}

TEST(ClipGradTest, LeavesGradsAloneAtOrBelowMaxNorm) {
  std::vector<Tensor> params = {ParamWithGrad({0.3, -0.4}, {2}, DType::kF32)};
  const std::vector<double> before = params[0].grad().ToDoubles();
  EXPECT_NEAR(ClipGradNorm(params, 0.5 + 1e-7), 0.5, 1e-7);
  EXPECT_EQ(params[0].grad().ToDoubles(), before);
  EXPECT_NEAR(ClipGradNorm(params, 10.0), 0.5, 1e-7);
  EXPECT_EQ(params[0].grad().ToDoubles(), before);
}

TEST(ClipGradTest, IgnoresParamsWithoutGrad) {
  Tensor no_grad = Tensor::Ones({3}, DType::kF32);
  no_grad.set_requires_grad(true);
  EXPECT_EQ(GlobalGradNorm({}), 0.0);
  EXPECT_EQ(ClipGradNorm({no_grad}, 1.0), 0.0);
  std::vector<Tensor> params = {no_grad, ParamWithGrad({5, 12}, {2}, DType::kF32)};
  EXPECT_EQ(ClipGradNorm(params, 1.0), 13.0);
  EXPECT_FALSE(no_grad.grad().defined());
}

TEST(ClipGradTest, NonFiniteNormIsReturnedAndGradsAreNotScaled) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Tensor> params = {ParamWithGrad({1, 2}, {2}, DType::kF32),
                                ParamWithGrad({inf, 0}, {2}, DType::kF32)};
  EXPECT_EQ(ClipGradNorm(params, 1.0), inf);
  EXPECT_EQ(params[0].grad().ToDoubles(), (std::vector<double>{1, 2}));

  params[1].grad().data<float>()[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(ClipGradNorm(params, 1.0)));
  EXPECT_EQ(params[0].grad().ToDoubles(), (std::vector<double>{1, 2}));
}

TEST(ClipGradTest, ScaleGradsMultipliesEveryGrad) {
  std::vector<Tensor> params = {ParamWithGrad({1, -2}, {2}, DType::kF64),
                                ParamWithGrad({0.5}, {1}, DType::kBF16)};
  ScaleGrads(params, 0.25);
  EXPECT_EQ(params[0].grad().ToDoubles(), (std::vector<double>{0.25, -0.5}));
  EXPECT_EQ(params[1].grad().ToDoubles(), (std::vector<double>{0.125}));
}

// Large grads: the f64 norm matches a Kahan-free double loop closely and does
// not depend on the thread count.
TEST(ClipGradTest, LargeNormIsAccurateAndThreadCountIndependent) {
  std::vector<double> g(100003);
  double ref = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    g[i] = std::sin(0.001 * double(i)) * (1.0 + double(i % 7));
    const double gf = double(float(g[i]));
    ref += gf * gf;
  }
  std::vector<Tensor> params = {ParamWithGrad(g, {int64_t(g.size())}, DType::kF32)};
  const int original = NumThreads();
  SetNumThreads(1);
  const double one = GlobalGradNorm(params);
  SetNumThreads(4);
  const double four = GlobalGradNorm(params);
  SetNumThreads(original);
  EXPECT_EQ(one, four);
  EXPECT_NEAR(one, std::sqrt(ref), 1e-12 * std::sqrt(ref));
}

TEST(ClipGradDeathTest, RejectsNonPositiveMaxNorm) {
  EXPECT_DEATH(ClipGradNorm({}, 0.0), "max_norm must be positive");
}

}  // namespace
}  // namespace loom
