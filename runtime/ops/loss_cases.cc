// Op-harness cases for CrossEntropy, plus bf16, error-path and
// token-count tests.
#include <cmath>

#include "gtest/gtest.h"
#include "runtime/ops/ops.h"
#include "runtime/testing/op_harness.h"

namespace loom::testing {
namespace {

// Labels in [0, v) with `ignore_index` at the given flat positions.
Tensor Labels(DimsRef sizes, int64_t v, uint64_t seed, std::vector<int64_t> ignored,
              int64_t ignore_index = -100) {
  std::vector<int64_t> labels = RandomIndices(sizes, v, seed).ToVector<int64_t>();
  for (int64_t i : ignored) labels[size_t(i)] = ignore_index;
  return Tensor::FromVector(labels, sizes);
}

// Cross-entropy over the last dim of `logits`, in doubles.
RefArray RefCrossEntropy(const RefArray& logits, const RefArray& labels, Reduction reduction,
                         int64_t ignore_index) {
  const int64_t v = logits.sizes.back(), n = labels.numel();
  RefArray per_token(labels.sizes);
  double total = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = int64_t(labels.v[size_t(i)]);
    if (label == ignore_index) continue;
    const double* row = &logits.v[size_t(i * v)];
    double mx = -INFINITY;
    for (int64_t j = 0; j < v; ++j) mx = std::max(mx, row[j]);
    double sum = 0;
    for (int64_t j = 0; j < v; ++j) sum += std::exp(row[j] - mx);
    per_token.v[size_t(i)] = mx + std::log(sum) - row[label];
    total += per_token.v[size_t(i)];
    ++count;
  }
  if (reduction == Reduction::kNone) return per_token;
  RefArray out(Dims{});
  out.v[0] = reduction == Reduction::kSum ? total : (count == 0 ? 0.0 : total / double(count));
  return out;
}

const char* Name(Reduction r) {
  return r == Reduction::kMean ? "mean" : r == Reduction::kSum ? "sum" : "none";
}

OpCase Case(std::string name, Dims logits_shape, Reduction reduction, std::vector<int64_t> ignored,
            int64_t ignore_index = -100, double scale = 2.0, double offset = 0.0) {
  const int64_t v = logits_shape.back();
  const Dims label_shape(logits_shape.begin(), logits_shape.end() - 1);
  return {.name = "cross_entropy/" + name + "_" + Name(reduction),
          .make_inputs =
              [=](DType dt) {
                Tensor logits = RandomNormal(logits_shape, DType::kF64, 7, scale);
                return Inputs{Cast(AddScalar(logits, offset), dt),
                              Labels(label_shape, v, 8, ignored, ignore_index)};
              },
          .grad_inputs = {0},
          .op =
              [=](const Inputs& in) {
                return Outputs{CrossEntropy(in[0], in[1], reduction, ignore_index)};
              },
          .reference =
              [=](const RefInputs& in) {
                return RefOutputs{RefCrossEntropy(in[0], in[1], reduction, ignore_index)};
              }};
}

std::vector<OpCase> MakeCases() {
  std::vector<OpCase> cases;
  for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
    cases.push_back(Case("rows_some_ignored", {6, 7}, r, {1, 4}));
    cases.push_back(Case("all_ignored", {3, 5}, r, {0, 1, 2}));
    cases.push_back(Case("logits_3d", {2, 3, 5}, r, {4}));
  }
  // V = 13 (no nice multiple) and an ignore_index that is also a valid class.
  cases.push_back(Case("v13_ignore_index_3", {5, 13}, Reduction::kMean, {0, 2}, 3));
  // Logits near 500: exp() would overflow without the max subtraction.
  cases.push_back(Case("large_logits", {4, 6}, Reduction::kMean, {}, -100, 1.0, 500.0));
  // A single class: every loss is 0.
  cases.push_back(Case("one_class", {4, 1}, Reduction::kSum, {2}));
  return cases;
}

LOOM_REGISTER_OP_CASES(LossCases) { return MakeCases(); }

// The loss is an f32 statistic of exact bf16 logits: it must be f32-accurate.
TEST(CrossEntropyTest, Bf16MatchesF64) {
  for (const OpCase& c : MakeCases()) ExpectBf16MatchesF64(c, 1e-5, 2e-2);
}

TEST(CrossEntropyTest, OutputDtypeIsTheStatDtype) {
  Tensor labels = Tensor::FromVector<int64_t>({1, 0}, {2});
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    EXPECT_EQ(CrossEntropy(RandomNormal({2, 3}, dt, 1), labels).dtype(), DType::kF32);
  }
  EXPECT_EQ(CrossEntropy(RandomNormal({2, 3}, DType::kF64, 1), labels).dtype(), DType::kF64);
}

// Summing per-micro-batch kSum losses and dividing by the global token count
// gives the mean over the whole batch.
TEST(CrossEntropyTest, SumOverMicroBatchesByGlobalCountIsTheMean) {
  Tensor logits = RandomNormal({8, 11}, DType::kF64, 3);
  Tensor labels = Labels({8}, 11, 4, {0, 5, 6});
  const int64_t total = CountTrainableTokens(labels);
  EXPECT_EQ(total, 5);
  double summed = 0;
  for (int64_t start : {0, 4}) {
    Tensor part_logits = Slice(logits, 0, start, start + 4);
    Tensor part_labels = Slice(labels, 0, start, start + 4);
    summed += CrossEntropy(part_logits, part_labels, Reduction::kSum).item();
  }
  EXPECT_NEAR(summed / double(total), CrossEntropy(logits, labels).item(), 1e-12);
}

TEST(CrossEntropyTest, CountTrainableTokens) {
  Tensor labels = Tensor::FromVector<int64_t>({3, -100, 0, -100, 7, -1}, {2, 3});
  EXPECT_EQ(CountTrainableTokens(labels), 4);
  EXPECT_EQ(CountTrainableTokens(labels, -1), 5);
  EXPECT_EQ(CountTrainableTokens(Tensor::FromVector<int32_t>({-100, 2}, {2})), 1);
}

TEST(CrossEntropyDeathTest, OutOfRangeLabelNamesLabelAndPosition) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Tensor logits = RandomNormal({2, 3, 5}, DType::kF32, 1);
  Tensor too_big = Tensor::FromVector<int64_t>({0, 1, 2, 7, 4, -100}, {2, 3});
  EXPECT_DEATH(CrossEntropy(logits, too_big), "label 7 at position 3 .* not in \\[0, 5\\)");
  Tensor negative = Tensor::FromVector<int64_t>({0, -1, 2, 3, 4, 1}, {2, 3});
  EXPECT_DEATH(CrossEntropy(logits, negative), "label -1 at position 1 ");
  // -1 is fine when it is the ignore_index.
  EXPECT_EQ(CountTrainableTokens(negative, -1), 5);
  EXPECT_TRUE(std::isfinite(CrossEntropy(logits, negative, Reduction::kMean, -1).item()));
}

TEST(CrossEntropyDeathTest, LabelShapeMismatch) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Tensor logits = RandomNormal({2, 3, 5}, DType::kF32, 1);
  EXPECT_DEATH(CrossEntropy(logits, Tensor::FromVector<int64_t>({0, 1}, {2})),
               "labels \\[2\\] do not match logits \\[2, 3, 5\\]");
}

}  // namespace
}  // namespace loom::testing
