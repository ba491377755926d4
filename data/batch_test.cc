#include "data/batch.h"

#include <algorithm>
#include <numeric>

#include "gtest/gtest.h"

namespace loom::data {
namespace {

TEST(CollateTest, PadsShiftsAndCounts) {
  Example a{.input_ids = {256, 10, 11, 12, 257}, .labels = {-100, -100, 11, 12, 257}};
  Example b{.input_ids = {256, 20, 257}, .labels = {-100, 20, 257}};
  Batch batch = Collate({&a, &b}, /*pad_id=*/258);
  ASSERT_EQ(batch.input_ids.sizes(), Dims({2, 5}));
  EXPECT_EQ(batch.input_ids.ToVector<int64_t>(),
            (std::vector<int64_t>{256, 10, 11, 12, 257, 256, 20, 257, 258, 258}));
  // target[t] = label[t + 1]; -100 at each row's last token and on padding.
  EXPECT_EQ(batch.targets.ToVector<int64_t>(),
            (std::vector<int64_t>{-100, 11, 12, 257, -100, 20, 257, -100, -100, -100}));
  EXPECT_EQ(batch.position_ids.ToVector<int64_t>(),
            (std::vector<int64_t>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4}));
  EXPECT_EQ(batch.num_tokens, 8);
  EXPECT_EQ(batch.num_trainable_tokens, 5);
}

TEST(CollateTest, PadsToAMultiple) {
  Example a{.input_ids = {1, 2, 3}, .labels = {1, 2, 3}};
  Batch batch = Collate({&a}, 0, /*pad_to_multiple=*/8);
  EXPECT_EQ(batch.input_ids.sizes(), Dims({1, 8}));
  EXPECT_EQ(batch.num_trainable_tokens, 2);
}

TEST(EpochOrderTest, IsADeterministicPermutationPerEpoch) {
  const std::vector<int64_t> a = EpochOrder(100, 42, 0);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(100);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(a, iota);
  EXPECT_EQ(EpochOrder(100, 42, 0), a);
  EXPECT_NE(EpochOrder(100, 42, 1), a);
  EXPECT_NE(EpochOrder(100, 43, 0), a);
  EXPECT_TRUE(EpochOrder(0, 1, 0).empty());
  EXPECT_EQ(EpochOrder(1, 1, 0), std::vector<int64_t>{0});
}

// Each position gets each value about equally often over many seeds (a
// biased shuffle, e.g. swapping with any index instead of [0, i], fails).
TEST(EpochOrderTest, IsUniform) {
  const int n = 4, trials = 24000;
  std::vector<std::vector<int>> counts(n, std::vector<int>(n));
  for (int s = 0; s < trials; ++s) {
    const std::vector<int64_t> o = EpochOrder(n, uint64_t(s), 0);
    for (int i = 0; i < n; ++i) ++counts[size_t(i)][size_t(o[size_t(i)])];
  }
  for (const auto& row : counts) {
    for (int c : row) EXPECT_NEAR(c, trials / n, 300);
  }
}

}  // namespace
}  // namespace loom::data
