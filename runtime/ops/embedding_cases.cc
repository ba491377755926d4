// Op-harness cases for Embedding, plus bf16, determinism and error tests.
#include <cstring>

#include "gtest/gtest.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"
#include "runtime/testing/op_harness.h"

namespace loom::testing {
namespace {

// Rows of weight [V, D] gathered by ids (any shape), in doubles.
RefOutputs RefEmbedding(const RefInputs& in) {
  const RefArray& ids = in[0];
  const RefArray& w = in[1];
  const int64_t d = w.size(1);
  Dims shape = ids.sizes;
  shape.push_back(d);
  RefArray out(shape);
  for (int64_t i = 0; i < ids.numel(); ++i) {
    for (int64_t j = 0; j < d; ++j) out.v[size_t(i * d + j)] = w.at({int64_t(ids.v[size_t(i)]), j});
  }
  return {out};
}

OpCase Case(std::string name, std::function<Tensor()> make_ids, Dims weight_shape) {
  return {.name = "embedding/" + name,
          .make_inputs =
              [=](DType dt) {
                return Inputs{make_ids(), RandomNormal(weight_shape, dt, 3)};
              },
          .grad_inputs = {1},
          .op = [](const Inputs& in) { return Outputs{Embedding(in[0], in[1])}; },
          .reference = RefEmbedding};
}

std::vector<OpCase> MakeCases() {
  return {
      // Ids 1 and 3 repeat (their gradients accumulate); rows 2 and 4 get none.
      Case("repeated_ids_i64",
           [] {
             return Tensor::FromVector<int64_t>({1, 3, 1, 0, 3, 3}, {2, 3});
           },
           {5, 4}),
      Case("i32_ids",
           [] {
             return Tensor::FromVector<int32_t>({5, 0, 5, 2, 2, 4, 5}, {7});
           },
           {6, 3}),
      Case("scalar_id", [] { return Tensor::FromVector<int64_t>({2}, {}); }, {4, 5}),
      Case("many_random_ids",
           [] {
             return RandomIndices({4, 9}, 7, 11);
           },
           {7, 6}),
  };
}

LOOM_REGISTER_OP_CASES(EmbeddingCases) { return MakeCases(); }

// The forward is a copy: exact in bf16.
TEST(EmbeddingTest, Bf16MatchesF64) {
  for (const OpCase& c : MakeCases()) ExpectBf16MatchesF64(c, 0.0, 1e-2);
}

// 1000 tokens with one id: a bf16 running sum would stall near 256 * ulp; the
// f32 accumulation gets the sum right up to one final bf16 rounding.
TEST(EmbeddingTest, RepeatedIdsAccumulateInF32) {
  Tensor weight = Tensor::Zeros({3, 2}, DType::kBF16).set_requires_grad(true);
  Tensor ids = Tensor::Full({1000}, 1, DType::kI64);
  Tensor out = Embedding(ids, weight);
  out.Backward(Tensor::Full({1000, 2}, 0.01, DType::kBF16));
  const std::vector<double> g = weight.grad().ToDoubles();
  const double want = 1000 * double(static_cast<float>(BFloat16(0.01f)));
  EXPECT_NEAR(g[2], want, want * 4e-3);
  EXPECT_NEAR(g[3], want, want * 4e-3);
  EXPECT_EQ(g[0], 0.0);
  EXPECT_EQ(g[5], 0.0);
}

// The weight gradient of a large batch, computed with `threads` workers.
Tensor GradWithThreads(int threads, DType dtype) {
  const int previous = NumThreads();
  SetNumThreads(threads);
  Tensor weight = RandomNormal({37, 256}, dtype, 1).set_requires_grad(true);
  Tensor ids = RandomIndices({2, 300}, 37, 2);
  Embedding(ids, weight).Backward(RandomNormal({2, 300, 256}, dtype, 3));
  SetNumThreads(previous);
  return weight.grad();
}

TEST(EmbeddingTest, BackwardIsBitwiseDeterministicAcrossThreadCounts) {
  for (DType dt : {DType::kF32, DType::kBF16}) {
    const Tensor one = GradWithThreads(1, dt);
    for (int threads : {2, 3}) {
      const Tensor many = GradWithThreads(threads, dt);
      ASSERT_EQ(one.nbytes(), many.nbytes());
      EXPECT_EQ(std::memcmp(one.raw_data(), many.raw_data(), one.nbytes()), 0)
          << DTypeName(dt) << " with " << threads << " threads";
    }
  }
}

TEST(EmbeddingDeathTest, OutOfRangeIdNamesIdAndPosition) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Tensor weight = RandomNormal({5, 4}, DType::kF32, 1);
  EXPECT_DEATH(Embedding(Tensor::FromVector<int64_t>({0, 4, 9, 1}, {2, 2}), weight),
               "id 9 at position 2 .*vocabulary of 5 rows");
  EXPECT_DEATH(Embedding(Tensor::FromVector<int32_t>({-3, 1}, {2}), weight),
               "id -3 at position 0 ");
  EXPECT_DEATH(Embedding(Tensor::FromVector<double>({0, 1}, {2}), weight),
               "ids must be i32 or i64, got f64");
}

}  // namespace
}  // namespace loom::testing
