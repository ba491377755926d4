// Op-harness cases for SwiGlu, plus bf16 and rounding tests.
#include <cmath>

#include "gtest/gtest.h"
#include "runtime/ops/ops.h"
#include "runtime/testing/op_harness.h"

namespace loom::testing {
namespace {

double SiluRef(double x) { return x / (1 + std::exp(-x)); }

RefOutputs RefSwiGlu(const RefInputs& in) {
  RefArray out(in[0].sizes);
  for (int64_t i = 0; i < out.numel(); ++i)
    out.v[size_t(i)] = SiluRef(in[0].v[size_t(i)]) * in[1].v[size_t(i)];
  return {out};
}

OpCase Case(std::string name, Dims shape, double scale) {
  return {.name = "swiglu/" + name,
          .make_inputs =
              [=](DType dt) {
                return Inputs{RandomNormal(shape, dt, 1, scale), RandomNormal(shape, dt, 2)};
              },
          .grad_inputs = {0, 1},
          .op = [](const Inputs& in) { return Outputs{SwiGlu(in[0], in[1])}; },
          .reference = RefSwiGlu};
}

std::vector<OpCase> MakeCases() {
  std::vector<OpCase> cases = {
      Case("rows", {3, 6}, 2.0),
      Case("batch_3d", {2, 2, 5}, 2.0),
      // Large |gate|: sigmoid saturates to 0 and 1.
      Case("saturated", {2, 4}, 30.0),
      Case("scalar", {}, 1.0),
  };
  // Non-contiguous operands, as halves of a fused [.., 2F] projection would be.
  cases.push_back({.name = "swiglu/strided_halves",
                   .make_inputs =
                       [](DType dt) {
                         return Inputs{RandomNormal({3, 8}, dt, 3)};
                       },
                   .grad_inputs = {0},
                   .op =
                       [](const Inputs& in) {
                         return Outputs{SwiGlu(Slice(in[0], 1, 0, 4), Slice(in[0], 1, 4, 8))};
                       },
                   .reference =
                       [](const RefInputs& in) {
                         RefArray out({3, 4});
                         for (int r = 0; r < 3; ++r)
                           for (int j = 0; j < 4; ++j)
                             out.at({r, j}) = SiluRef(in[0].at({r, j})) * in[0].at({r, j + 4});
                         return RefOutputs{out};
                       }});
  return cases;
}

LOOM_REGISTER_OP_CASES(ActivationCases) { return MakeCases(); }

TEST(SwiGluTest, Bf16MatchesF64) {
  for (const OpCase& c : MakeCases()) ExpectBf16MatchesF64(c, 1e-2, 2e-2);
}

// As HF's act_fn(gate) * up in bf16: silu rounds to bf16 before the product.
TEST(SwiGluTest, RoundsLikeHuggingFaceInBf16) {
  Tensor gate = RandomNormal({64}, DType::kBF16, 7, 3.0);
  Tensor up = RandomNormal({64}, DType::kBF16, 8);
  const std::vector<double> got = SwiGlu(gate, up).ToDoubles();
  const std::vector<double> g = gate.ToDoubles(), u = up.ToDoubles();
  for (size_t i = 0; i < got.size(); ++i) {
    const float silu = float(g[i]) / (1.0f + std::exp(-float(g[i])));
    const float want = float(BFloat16(float(BFloat16(silu)) * float(u[i])));
    EXPECT_EQ(got[i], double(want)) << "element " << i;
  }
}

TEST(SwiGluDeathTest, ShapesMustMatch) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(SwiGlu(RandomNormal({2, 3}, DType::kF32, 1), RandomNormal({3, 2}, DType::kF32, 2)),
               "SwiGlu: gate and up must be floating tensors of one dtype and shape");
}

}  // namespace
}  // namespace loom::testing
