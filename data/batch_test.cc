#include "data/batch.h"

#include <algorithm>
#include <numeric>

#include "gtest/gtest.h"

namespace loom::data {
namespace {

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
