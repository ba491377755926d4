// AdamW against a textbook AdamW over doubles (and closed forms where they exist).
#include "runtime/optim/adamw.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/parallel.h"

namespace loom {
namespace {

// AdamW as written in the paper (Loshchilov & Hutter) with torch's decoupled
// decay applied first; plain doubles, one parameter tensor.
struct RefAdamW {
  std::vector<double> p, m, v;
  int64_t t = 0;

  explicit RefAdamW(std::vector<double> init)
      : p(std::move(init)), m(p.size(), 0.0), v(p.size(), 0.0) {}

  void Step(const std::vector<double>& g, const AdamWConfig& c, double wd) {
    ++t;
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] -= c.lr * wd * p[i];
      m[i] = c.beta1 * m[i] + (1 - c.beta1) * g[i];
      v[i] = c.beta2 * v[i] + (1 - c.beta2) * g[i] * g[i];
      const double m_hat = m[i] / (1 - std::pow(c.beta1, double(t)));
      const double v_hat = v[i] / (1 - std::pow(c.beta2, double(t)));
      p[i] -= c.lr * m_hat / (std::sqrt(v_hat) + c.eps);
    }
  }
};

Tensor Param(const std::vector<double>& values, DimsRef sizes, DType dtype) {
  Tensor t = Tensor::FromDoubles(values, sizes, dtype);
  t.set_requires_grad(true);
  return t;
}

void SetGrad(const Tensor& param, const std::vector<double>& g, DType dtype) {
  param.set_grad(Tensor::FromDoubles(g, param.sizes(), dtype));
}

// ||a - b|| / ||b||.
double RelError(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

const AdamWConfig kConfig{
    .lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};

const std::vector<double> kP0 = {0.5, -1.25, 2.0};
const std::vector<double> kG1 = {0.3, -0.02, 1.5};
const std::vector<double> kG2 = {-0.1, 0.4, 0.7};
const std::vector<double> kQ0 = {1.0, -0.75, 0.125, 3.0};
const std::vector<double> kH1 = {0.05, 0.6, -2.0, 0.0};
const std::vector<double> kH2 = {0.25, -0.3, -1.0, 0.01};

void ExpectTwoStepsMatchReference(DType dtype, double tol) {
  Tensor p = Param(kP0, {3}, dtype);
  Tensor q = Param(kQ0, {2, 2}, dtype);
  AdamW opt({p, q}, kConfig);
  RefAdamW ref_p(kP0), ref_q(kQ0);
  for (int step = 1; step <= 2; ++step) {
    SetGrad(p, step == 1 ? kG1 : kG2, dtype);
    SetGrad(q, step == 1 ? kH1 : kH2, dtype);
    opt.Step();
    ref_p.Step(step == 1 ? kG1 : kG2, kConfig, kConfig.weight_decay);
    ref_q.Step(step == 1 ? kH1 : kH2, kConfig, kConfig.weight_decay);
    EXPECT_LE(RelError(p.ToDoubles(), ref_p.p), tol) << "step " << step;
    EXPECT_LE(RelError(q.ToDoubles(), ref_q.p), tol) << "step " << step;
    EXPECT_LE(RelError(opt.exp_avg(0).ToDoubles(), ref_p.m), tol);
    EXPECT_LE(RelError(opt.exp_avg_sq(0).ToDoubles(), ref_p.v), tol);
    EXPECT_LE(RelError(opt.exp_avg(1).ToDoubles(), ref_q.m), tol);
    EXPECT_LE(RelError(opt.exp_avg_sq(1).ToDoubles(), ref_q.v), tol);
    EXPECT_EQ(opt.param_step(0), step);
    EXPECT_EQ(opt.step_count(), step);
  }
  EXPECT_EQ(opt.exp_avg(0).dtype(), dtype);
}

TEST(AdamWTest, TwoStepsMatchReferenceF64) { ExpectTwoStepsMatchReference(DType::kF64, 1e-14); }

TEST(AdamWTest, TwoStepsMatchReferenceF32) { ExpectTwoStepsMatchReference(DType::kF32, 1e-6); }

// With no decay, bias correction makes the first update lr * g / (|g| + eps).
TEST(AdamWTest, FirstStepIsBiasCorrectedSignUpdate) {
  Tensor p = Param(kP0, {3}, DType::kF64);
  AdamWConfig c = kConfig;
  c.weight_decay = 0;
  AdamW opt({p}, c);
  SetGrad(p, kG1, DType::kF64);
  opt.Step();
  const std::vector<double> got = p.ToDoubles();
  for (size_t i = 0; i < kP0.size(); ++i) {
    EXPECT_NEAR(got[i], kP0[i] - c.lr * kG1[i] / (std::abs(kG1[i]) + c.eps), 1e-15);
  }
}

TEST(AdamWTest, DecayIsDecoupledFromTheGradient) {
  // A zero grad leaves only the decay: p * (1 - lr * wd) (m = v = 0 give no update).
  Tensor p = Param(kP0, {3}, DType::kF64);
  AdamW opt({p}, kConfig);
  SetGrad(p, {0, 0, 0}, DType::kF64);
  opt.Step();
  const std::vector<double> got = p.ToDoubles();
  for (size_t i = 0; i < kP0.size(); ++i) {
    EXPECT_DOUBLE_EQ(got[i], kP0[i] * (1 - kConfig.lr * kConfig.weight_decay));
  }
}

TEST(AdamWTest, SkipsParamsWithoutGradAndKeepsTheirOwnStep) {
  Tensor p = Param(kP0, {3}, DType::kF64);
  Tensor q = Param(kQ0, {2, 2}, DType::kF64);
  AdamW opt({p, q}, kConfig);
  RefAdamW ref_p(kP0), ref_q(kQ0);

  SetGrad(p, kG1, DType::kF64);  // q has no grad at step 1
  opt.Step();
  ref_p.Step(kG1, kConfig, kConfig.weight_decay);
  EXPECT_EQ(q.ToDoubles(), kQ0);
  EXPECT_FALSE(opt.exp_avg(1).defined());
  EXPECT_EQ(opt.param_step(1), 0);

  SetGrad(p, kG2, DType::kF64);
  SetGrad(q, kH1, DType::kF64);
  opt.Step();
  ref_p.Step(kG2, kConfig, kConfig.weight_decay);
  ref_q.Step(kH1, kConfig, kConfig.weight_decay);  // q's first update: bias correction of step 1
  EXPECT_EQ(opt.step_count(), 2);
  EXPECT_EQ(opt.param_step(0), 2);
  EXPECT_EQ(opt.param_step(1), 1);
  EXPECT_LE(RelError(p.ToDoubles(), ref_p.p), 1e-14);
  EXPECT_LE(RelError(q.ToDoubles(), ref_q.p), 1e-14);
}

TEST(AdamWTest, LrChangeAppliesToLaterSteps) {
  Tensor p = Param(kP0, {3}, DType::kF64);
  AdamW opt({p}, kConfig);
  RefAdamW ref(kP0);
  SetGrad(p, kG1, DType::kF64);
  opt.Step();
  ref.Step(kG1, kConfig, kConfig.weight_decay);
  opt.set_lr(3e-3);
  EXPECT_EQ(opt.lr(), 3e-3);
  AdamWConfig c2 = kConfig;
  c2.lr = 3e-3;
  SetGrad(p, kG2, DType::kF64);
  opt.Step();
  ref.Step(kG2, c2, c2.weight_decay);
  EXPECT_LE(RelError(p.ToDoubles(), ref.p), 1e-14);
}

TEST(AdamWTest, ParamGroupsHaveTheirOwnWeightDecay) {
  Tensor w = Param(kP0, {3}, DType::kF64);
  Tensor b = Param(kQ0, {4}, DType::kF64);
  AdamW opt({{.params = {w}, .weight_decay = 0.1}, {.params = {b}, .weight_decay = 0.0}},
            {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.5});
  EXPECT_EQ(opt.num_params(), 2u);
  EXPECT_EQ(opt.weight_decay(0), 0.1);
  EXPECT_EQ(opt.weight_decay(1), 0.0);
  RefAdamW ref_w(kP0), ref_b(kQ0);
  for (int step = 1; step <= 2; ++step) {
    SetGrad(w, step == 1 ? kG1 : kG2, DType::kF64);
    SetGrad(b, step == 1 ? kH1 : kH2, DType::kF64);
    opt.Step();
    ref_w.Step(step == 1 ? kG1 : kG2, kConfig, 0.1);
    ref_b.Step(step == 1 ? kH1 : kH2, kConfig, 0.0);
  }
  EXPECT_LE(RelError(w.ToDoubles(), ref_w.p), 1e-14);
  EXPECT_LE(RelError(b.ToDoubles(), ref_b.p), 1e-14);
}

// 16-bit params keep f32 moments; each step computes in f32 and rounds the
// param once, so the result is the reference step (from the stored param)
// rounded to the param dtype. Grads may have another dtype; f64 params keep
// f64 moments.
struct MixedCase {
  DType param_dtype, grad_dtype;
};

class AdamWMixedTest : public ::testing::TestWithParam<MixedCase> {};

TEST_P(AdamWMixedTest, StateIsF32AndParamIsRoundedReference) {
  const MixedCase mc = GetParam();
  Tensor p = Param(kQ0, {4}, mc.param_dtype);
  AdamW opt({p}, kConfig);
  RefAdamW ref(p.ToDoubles());
  for (int step = 1; step <= 2; ++step) {
    Tensor g = Tensor::FromDoubles(step == 1 ? kH1 : kH2, {4}, mc.grad_dtype);
    p.set_grad(g);
    ref.p = p.ToDoubles();  // continue from the stored (rounded) values
    opt.Step();
    ref.Step(g.ToDoubles(), kConfig, kConfig.weight_decay);
    if (SizeOf(mc.param_dtype) == 2) {
      const std::vector<double> rounded =
          Tensor::FromDoubles(ref.p, {4}, mc.param_dtype).ToDoubles();
      EXPECT_EQ(p.ToDoubles(), rounded) << "step " << step;
    } else {
      EXPECT_LE(RelError(p.ToDoubles(), ref.p), 1e-6) << "step " << step;
    }
    EXPECT_LE(RelError(opt.exp_avg(0).ToDoubles(), ref.m), 1e-6);
    EXPECT_LE(RelError(opt.exp_avg_sq(0).ToDoubles(), ref.v), 1e-6);
  }
  EXPECT_EQ(p.dtype(), mc.param_dtype);
  const DType state_dtype = mc.param_dtype == DType::kF64 ? DType::kF64 : DType::kF32;
  EXPECT_EQ(opt.exp_avg(0).dtype(), state_dtype);
  EXPECT_EQ(opt.exp_avg_sq(0).dtype(), state_dtype);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, AdamWMixedTest,
                         ::testing::Values(MixedCase{DType::kBF16, DType::kF32},
                                           MixedCase{DType::kF16, DType::kF32},
                                           MixedCase{DType::kBF16, DType::kBF16},
                                           MixedCase{DType::kF32, DType::kBF16},
                                           MixedCase{DType::kF64, DType::kF32}));

std::vector<double> RandomValues(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = dist(gen);
  return v;
}

// Tensors spanning several parallel chunks (chunk edges fall inside tensors),
// plus a transposed (strided) parameter; results must match the reference
// and be bit-identical for any thread count.
std::vector<std::vector<double>> RunManyTensors(int threads) {
  SetNumThreads(threads);
  const std::vector<Dims> shapes = {{40000}, {7}, {30001}, {1}};
  std::vector<Tensor> params;
  std::vector<RefAdamW> refs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    params.push_back(Param(RandomValues(NumElements(shapes[i]), 10 + i), shapes[i], DType::kF32));
    refs.emplace_back(params.back().ToDoubles());
  }
  // A [5, 3] view of [3, 5] row-major storage.
  Tensor base = Tensor::FromDoubles(RandomValues(15, 99), {3, 5}, DType::kF32);
  Tensor strided = Tensor::FromStorage(base.storage(), 0, {5, 3}, {1, 5}, DType::kF32);
  strided.set_requires_grad(true);
  params.push_back(strided);
  refs.emplace_back(strided.ToDoubles());

  AdamW opt(params, kConfig);
  for (int step = 1; step <= 2; ++step) {
    for (size_t i = 0; i < params.size(); ++i) {
      const std::vector<double> g = RandomValues(params[i].numel(), 1000 * step + i);
      SetGrad(params[i], g, DType::kF32);
      refs[i].Step(params[i].grad().ToDoubles(), kConfig, kConfig.weight_decay);
    }
    opt.Step();
  }
  std::vector<std::vector<double>> out;
  for (size_t i = 0; i < params.size(); ++i) {
    out.push_back(params[i].ToDoubles());
    EXPECT_LE(RelError(out.back(), refs[i].p), 1e-6) << "tensor " << i;
  }
  return out;
}

TEST(AdamWTest, ManyTensorsMatchReferenceForAnyThreadCount) {
  const int original = NumThreads();
  const auto one = RunManyTensors(1);
  const auto four = RunManyTensors(4);
  SetNumThreads(original);
  EXPECT_EQ(one, four);
}

TEST(AdamWTest, ZeroGradDropsGradsAndTheNextStepChangesNothing) {
  Tensor p = Param(kP0, {3}, DType::kF32);
  AdamW opt({p}, kConfig);
  SetGrad(p, kG1, DType::kF32);
  opt.Step();
  opt.ZeroGrad();
  EXPECT_FALSE(p.grad().defined());
  const std::vector<double> before = p.ToDoubles();
  opt.Step();
  EXPECT_EQ(p.ToDoubles(), before);
  EXPECT_EQ(opt.param_step(0), 1);
  EXPECT_EQ(opt.step_count(), 2);
}

TEST(AdamWTest, SetStateResumesBitIdentically) {
  Tensor p = Param(kP0, {3}, DType::kF32);
  AdamW a({p}, kConfig);
  SetGrad(p, kG1, DType::kF32);
  a.Step();

  Tensor p2 = Param(p.ToDoubles(), {3}, DType::kF32);
  AdamW b({p2}, kConfig);
  b.SetState(0, a.param_step(0), a.exp_avg(0), a.exp_avg_sq(0));
  b.set_step_count(a.step_count());
  EXPECT_FALSE(b.exp_avg(0).is_same(a.exp_avg(0)));  // copied, not shared

  SetGrad(p, kG2, DType::kF32);
  SetGrad(p2, kG2, DType::kF32);
  a.Step();
  b.Step();
  EXPECT_EQ(p2.ToDoubles(), p.ToDoubles());
  EXPECT_EQ(b.exp_avg_sq(0).ToDoubles(), a.exp_avg_sq(0).ToDoubles());
  EXPECT_EQ(b.step_count(), 2);
}

TEST(AdamWDeathTest, RejectsDuplicateAndMismatchedParams) {
  Tensor p = Param(kP0, {3}, DType::kF32);
  EXPECT_DEATH(AdamW({p, p}, kConfig), "given twice");
  EXPECT_DEATH(AdamW({Tensor::FromVector<int64_t>({1, 2}, {2})}, kConfig), "expected a float");
  AdamW opt({p}, kConfig);
  p.set_grad(Tensor::Zeros({4}, DType::kF32));
  EXPECT_DEATH(opt.Step(), "has a grad of shape \\[4\\]");
}

}  // namespace
}  // namespace loom
