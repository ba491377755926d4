// Op-harness cases for ApplyRope and tests of RopeInvFreq, the f32 angle
// convention, bf16 and the relative-position property.
#include <cmath>

#include "gtest/gtest.h"
#include "runtime/ops/ops.h"
#include "runtime/testing/op_harness.h"

namespace loom::testing {
namespace {

DType FreqDType(DType dt) { return dt == DType::kF64 ? DType::kF64 : DType::kF32; }

// x [B, T, H, E] rotated pairwise (i, i + E/2) by positions[b, t] * inv_freq[i].
RefArray RefRope(const RefArray& x, const RefArray& positions, const RefArray& inv_freq) {
  const int64_t b = x.size(0), t = x.size(1), h = x.size(2), e = x.size(3), half = e / 2;
  RefArray out(x.sizes);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t ti = 0; ti < t; ++ti)
      for (int64_t hi = 0; hi < h; ++hi)
        for (int64_t i = 0; i < half; ++i) {
          const double angle = positions.at({bi, ti}) * inv_freq.v[size_t(i)];
          const double x1 = x.at({bi, ti, hi, i}), x2 = x.at({bi, ti, hi, i + half});
          out.at({bi, ti, hi, i}) = x1 * std::cos(angle) - x2 * std::sin(angle);
          out.at({bi, ti, hi, i + half}) = x2 * std::cos(angle) + x1 * std::sin(angle);
        }
  return out;
}

// The f32 angle float(p) * inv_freq (as HF computes it) is off from the exact
// one by up to |angle| * 2^-24, so f32 results are compared at 1e-4.
OpCase Case(std::string name, Dims x_shape, std::vector<int64_t> positions, double theta) {
  const Dims pos_shape = {x_shape[0], x_shape[1]};
  const int64_t e = x_shape[3];
  return {.name = "rope/" + name,
          .make_inputs =
              [=](DType dt) {
                return Inputs{RandomNormal(x_shape, dt, 1),
                              Tensor::FromVector(positions, pos_shape),
                              RopeInvFreq(e, theta, FreqDType(dt))};
              },
          .grad_inputs = {0},
          .op = [](const Inputs& in) { return Outputs{ApplyRope(in[0], in[1], in[2])}; },
          .reference = [](const RefInputs& in) { return RefOutputs{RefRope(in[0], in[1], in[2])}; },
          .f32_tol = 1e-4};
}

std::vector<OpCase> MakeCases() {
  std::vector<OpCase> cases = {
      // Packed rows: sequences restart at position 0 inside a row.
      Case("e8_theta1e4_packed", {2, 4, 3, 8}, {0, 1, 2, 0, 5, 6, 0, 1}, 10000.0),
      Case("e16_theta5e5_packed", {2, 3, 2, 16}, {0, 1, 0, 40, 41, 42}, 500000.0),
      Case("e16_theta1e4_far_positions", {1, 4, 1, 16}, {0, 97, 998, 3001}, 10000.0),
      Case("e8_theta5e5_one_token", {1, 1, 4, 8}, {7}, 500000.0),
  };
  // x as a transposed view of [B, H, T, E] (the layout after a head split).
  // positions [1, T] shared by both rows of the batch.
  cases.push_back({.name = "rope/shared_positions",
                   .make_inputs =
                       [](DType dt) {
                         return Inputs{RandomNormal({2, 3, 2, 8}, dt, 5),
                                       Tensor::FromVector<int64_t>({4, 0, 9}, {1, 3}),
                                       RopeInvFreq(8, 10000.0, FreqDType(dt))};
                       },
                   .grad_inputs = {0},
                   .op = [](const Inputs& in) { return Outputs{ApplyRope(in[0], in[1], in[2])}; },
                   .reference =
                       [](const RefInputs& in) {
                         RefArray pos({2, 3});
                         for (int b = 0; b < 2; ++b)
                           for (int t = 0; t < 3; ++t) pos.at({b, t}) = in[1].at({0, t});
                         return RefOutputs{RefRope(in[0], pos, in[2])};
                       },
                   .f32_tol = 1e-4});
  cases.push_back({.name = "rope/transposed_input",
                   .make_inputs =
                       [](DType dt) {
                         return Inputs{
                             RandomNormal({2, 3, 4, 8}, dt, 2),
                             Tensor::FromVector<int64_t>({3, 0, 1, 2, 0, 1, 2, 3}, {2, 4}),
                             RopeInvFreq(8, 10000.0, FreqDType(dt))};
                       },
                   .grad_inputs = {0},
                   .op =
                       [](const Inputs& in) {
                         return Outputs{ApplyRope(Transpose(in[0], 1, 2), in[1], in[2])};
                       },
                   .reference =
                       [](const RefInputs& in) {
                         RefArray x({2, 4, 3, 8});
                         for (int b = 0; b < 2; ++b)
                           for (int h = 0; h < 3; ++h)
                             for (int t = 0; t < 4; ++t)
                               for (int e = 0; e < 8; ++e)
                                 x.at({b, t, h, e}) = in[0].at({b, h, t, e});
                         return RefOutputs{RefRope(x, in[1], in[2])};
                       },
                   .f32_tol = 1e-4});
  return cases;
}

LOOM_REGISTER_OP_CASES(RopeCases) { return MakeCases(); }

TEST(RopeTest, Bf16MatchesF64) {
  for (const OpCase& c : MakeCases()) ExpectBf16MatchesF64(c, 1e-2, 2e-2);
}

TEST(RopeTest, InvFreqMatchesTheFormula) {
  for (double theta : {10000.0, 500000.0}) {
    for (int64_t e : {8, 16, 128}) {
      const std::vector<double> f64 = RopeInvFreq(e, theta, DType::kF64).ToDoubles();
      const std::vector<double> f32 = RopeInvFreq(e, theta).ToDoubles();
      ASSERT_EQ(f64.size(), size_t(e / 2));
      ASSERT_EQ(f32.size(), size_t(e / 2));
      EXPECT_EQ(f64[0], 1.0);
      for (int64_t i = 0; i < e / 2; ++i) {
        const double want = std::pow(theta, -2.0 * double(i) / double(e));
        EXPECT_NEAR(f64[size_t(i)], want, want * 1e-15) << "theta " << theta << " i " << i;
        // f32: the exponent and the power each round once.
        EXPECT_NEAR(f32[size_t(i)], want, want * 1e-5) << "theta " << theta << " i " << i;
      }
    }
  }
  EXPECT_EQ(RopeInvFreq(8, 10000.0).dtype(), DType::kF32);
}

// For f32 x the angle is float(position) * inv_freq rounded to f32, as HF
// computes it; at position 131071 that differs visibly from the exact angle.
TEST(RopeTest, F32AngleIsRoundedLikeHuggingFace) {
  const int64_t e = 8, pos = 131071;
  Tensor inv_freq = RopeInvFreq(e, 10000.0);
  Tensor x = RandomNormal({1, 1, 1, e}, DType::kF32, 3);
  const std::vector<double> got =
      ApplyRope(x, Tensor::FromVector<int64_t>({pos}, {1, 1}), inv_freq).ToDoubles();
  const std::vector<double> xs = x.ToDoubles(), fs = inv_freq.ToDoubles();
  std::vector<double> want_f32_angle(e), want_exact_angle(e);
  for (int64_t i = 0; i < e / 2; ++i) {
    const double exact = double(pos) * fs[size_t(i)];
    const double rounded = double(float(pos) * float(fs[size_t(i)]));
    for (auto [angle, want] : {std::pair{rounded, &want_f32_angle}, {exact, &want_exact_angle}}) {
      (*want)[size_t(i)] =
          xs[size_t(i)] * std::cos(angle) - xs[size_t(i + e / 2)] * std::sin(angle);
      (*want)[size_t(i + e / 2)] =
          xs[size_t(i + e / 2)] * std::cos(angle) + xs[size_t(i)] * std::sin(angle);
    }
  }
  EXPECT_LE(RelativeError(got, want_f32_angle), 1e-6);
  EXPECT_GT(RelativeError(got, want_exact_angle), 2e-5);
}

// <rope(q, m), rope(k, n)> depends only on m - n: the property RoPE exists for.
TEST(RopeTest, DotProductDependsOnlyOnRelativePosition) {
  Tensor inv_freq = RopeInvFreq(16, 10000.0, DType::kF64);
  Tensor q = RandomNormal({1, 1, 1, 16}, DType::kF64, 4);
  Tensor k = RandomNormal({1, 1, 1, 16}, DType::kF64, 5);
  auto dot_at = [&](int64_t m, int64_t n) {
    Tensor qm = ApplyRope(q, Tensor::FromVector<int64_t>({m}, {1, 1}), inv_freq);
    Tensor kn = ApplyRope(k, Tensor::FromVector<int64_t>({n}, {1, 1}), inv_freq);
    return Sum(Mul(qm, kn)).item();
  };
  const double base = dot_at(3, 0);
  EXPECT_NEAR(dot_at(10, 7), base, 1e-12);
  EXPECT_NEAR(dot_at(1003, 1000), base, 1e-10);
  EXPECT_GT(std::abs(dot_at(4, 0) - base), 1e-6);
}

TEST(RopeDeathTest, PositionsMustMatchBatchAndTime) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(ApplyRope(RandomNormal({2, 3, 1, 8}, DType::kF32, 1),
                         Tensor::FromVector<int64_t>({0, 1, 2, 3}, {2, 2}), RopeInvFreq(8, 1e4)),
               "positions must be i64 \\[2, 3\\] \\(or \\[1, 3\\]\\) .* got i64 \\[2, 2\\]");
}

}  // namespace
}  // namespace loom::testing
