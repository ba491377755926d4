#include "data/packer.h"

#include <algorithm>
#include <random>

#include "gtest/gtest.h"
#include "runtime/parallel.h"

namespace loom::data {
namespace {

std::vector<std::vector<int64_t>> Bins(const Packing& p) {
  std::vector<std::vector<int64_t>> out;
  for (int64_t b = 0; b < p.num_bins(); ++b) out.emplace_back(p.bin(b).begin(), p.bin(b).end());
  return out;
}

// Plain first-fit-decreasing: stable sort by length (longest first), then a
// linear scan of the open bins for each sample. The reference for the
// segment-tree version.
std::vector<std::vector<int64_t>> ReferenceFfd(const std::vector<int32_t>& lengths,
                                               std::vector<int64_t> members, int64_t capacity,
                                               int64_t bin_size, int64_t sort_divisor = 0) {
  // Long samples (all if sort_divisor is 0) longest first, then the short
  // ones in their order.
  const int64_t small = sort_divisor > 0 ? capacity / sort_divisor : 0;
  std::stable_sort(members.begin(), members.end(), [&](int64_t a, int64_t b) {
    const int64_t la = lengths[size_t(a)] > small ? lengths[size_t(a)] : 0;
    const int64_t lb = lengths[size_t(b)] > small ? lengths[size_t(b)] : 0;
    return la > lb;
  });
  std::vector<std::vector<int64_t>> bins;
  std::vector<int64_t> used;
  for (int64_t s : members) {
    size_t b = 0;
    while (b < bins.size() &&
           (used[b] + lengths[size_t(s)] > capacity || int64_t(bins[b].size()) >= bin_size)) {
      ++b;
    }
    if (b == bins.size()) {
      bins.emplace_back();
      used.push_back(0);
    }
    bins[b].push_back(s);
    used[b] += lengths[size_t(s)];
  }
  return bins;
}

std::vector<int32_t> RandomLengths(int64_t n, int32_t lo, int32_t hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(lo, hi);
  std::vector<int32_t> l(static_cast<size_t>(n));
  for (int32_t& x : l) x = d(rng);
  return l;
}

// Every sample exactly once, no bin over capacity or over bin_size.
void ExpectValid(const Packing& p, const std::vector<int32_t>& lengths, const PackOptions& o) {
  std::vector<int> seen(lengths.size(), 0);
  int64_t tokens = 0;
  for (int64_t b = 0; b < p.num_bins(); ++b) {
    int64_t used = 0;
    ASSERT_GE(p.bin(b).size(), 1u) << "empty bin " << b;
    ASSERT_LE(int64_t(p.bin(b).size()), o.bin_size) << "bin " << b;
    for (int64_t s : p.bin(b)) {
      ASSERT_GE(s, 0);
      ASSERT_LT(s, int64_t(lengths.size()));
      ++seen[size_t(s)];
      used += lengths[size_t(s)];
    }
    ASSERT_LE(used, o.capacity) << "bin " << b;
    tokens += used;
  }
  for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], 1) << "sample " << i;
  EXPECT_EQ(p.tokens, tokens);
}

TEST(PackerTest, FirstFitDecreasingSmallExample) {
  const std::vector<int32_t> lengths = {3, 5, 2, 4, 1, 3, 2};
  const std::vector<int64_t> all = {0, 1, 2, 3, 4, 5, 6};
  // Longest first: 5(1) 4(3) 3(0) 3(5) 2(2) 2(6) 1(4).
  // 5,4 -> bin 0 (9); 3,3,2,2 -> bin 1 (10); 1 -> bin 0 (10).
  const Packing p = FirstFitDecreasing(lengths, all, 10, 200);
  EXPECT_EQ(Bins(p), (std::vector<std::vector<int64_t>>{{1, 3, 4}, {0, 5, 2, 6}}));
  EXPECT_EQ(p.tokens, 20);
  EXPECT_DOUBLE_EQ(p.Efficiency(10), 1.0);
  EXPECT_EQ(LowerBoundBins(lengths, 10), 2);
  // A cap of 2 samples per bin.
  EXPECT_EQ(Bins(FirstFitDecreasing(lengths, all, 10, 2)),
            (std::vector<std::vector<int64_t>>{{1, 3}, {0, 5}, {2, 6}, {4}}));
}

TEST(PackerTest, SegmentTreeMatchesThePlainReference) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t n = 1 + int64_t(rng() % 400);
    const int64_t capacity = 1 + int64_t(rng() % 300);
    const int64_t bin_size = 1 + int64_t(rng() % 12);
    const std::vector<int32_t> lengths = RandomLengths(n, 1, int32_t(capacity), uint32_t(trial));
    std::vector<int64_t> members(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) members[size_t(i)] = i;
    std::shuffle(members.begin(), members.end(), rng);
    const int64_t divisor = trial % 3 == 0 ? 0 : 1 + int64_t(rng() % 10);
    EXPECT_EQ(Bins(FirstFitDecreasing(lengths, members, capacity, bin_size, divisor)),
              ReferenceFfd(lengths, members, capacity, bin_size, divisor))
        << "trial " << trial << " divisor " << divisor;
  }
}

TEST(PackerTest, RandomInputsAreAlwaysValid) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    PackOptions o{.capacity = 8 + int64_t(rng() % 500),
                  .group_size = 1 + int64_t(rng() % 300),
                  .bin_size = 1 + int64_t(rng() % 20),
                  .sequential = trial % 4 == 3,
                  .seed = rng(),
                  .epoch = int64_t(rng() % 5)};
    const std::vector<int32_t> lengths =
        RandomLengths(int64_t(rng() % 2000), 1, int32_t(o.capacity), uint32_t(trial));
    auto p = PackSamples(lengths, o);
    ASSERT_TRUE(p.ok()) << p.status();
    ExpectValid(*p, lengths, o);
  }
}

TEST(PackerTest, DeterministicPerSeedAndEpochAndIndependentOfThreads) {
  const std::vector<int32_t> lengths = RandomLengths(30000, 1, 1024, 3);
  PackOptions o{.capacity = 1024, .group_size = 4000, .seed = 42, .epoch = 1};
  const int threads = NumThreads();
  SetNumThreads(1);
  const Packing one = *PackSamples(lengths, o);
  SetNumThreads(std::max(2, threads));
  const Packing many = *PackSamples(lengths, o);
  SetNumThreads(threads);
  EXPECT_EQ(one.samples, many.samples);
  EXPECT_EQ(one.offsets, many.offsets);
  o.epoch = 2;
  const Packing next = *PackSamples(lengths, o);
  EXPECT_NE(next.samples, one.samples) << "not repacked per epoch";
  o.epoch = 1;
  o.seed = 43;
  EXPECT_NE(PackSamples(lengths, o)->samples, one.samples);
}

TEST(PackerTest, BinOrderIsShuffled) {
  // Sorted packing would put the fullest (longest-sample) bins first.
  const std::vector<int32_t> lengths = RandomLengths(5000, 1, 512, 9);
  const Packing p = *PackSamples(lengths, {.capacity = 512, .seed = 1});
  int64_t first_half_max = 0, second_half_max = 0;
  for (int64_t b = 0; b < p.num_bins(); ++b) {
    for (int64_t s : p.bin(b)) {
      (b < p.num_bins() / 2 ? first_half_max : second_half_max) = std::max<int64_t>(
          b < p.num_bins() / 2 ? first_half_max : second_half_max, lengths[size_t(s)]);
    }
  }
  EXPECT_GT(second_half_max, 450);
  EXPECT_GT(first_half_max, 450);
}

TEST(PackerTest, FfdIsCloseToTheLowerBound) {
  const std::vector<int32_t> lengths = RandomLengths(20000, 1, 2048, 4);
  const Packing p = *PackSamples(lengths, {.capacity = 2048, .seed = 7});
  const int64_t lower = LowerBoundBins(lengths, 2048);
  EXPECT_LE(p.num_bins(), lower + lower / 50) << "more than 2% over the lower bound";
  EXPECT_GT(p.Efficiency(2048), 0.98);
}

// When many short samples share a bin, sorting them all would make each bin
// a run of equal lengths (and on data whose length tracks its content, each
// micro-batch one kind of sample). Short samples keep their shuffled order.
TEST(PackerTest, BinsOfShortSamplesMixLengths) {
  const std::vector<int32_t> lengths = RandomLengths(12000, 11, 20, 6);
  auto mean_distinct = [&](int64_t divisor) {
    const Packing p = *PackSamples(lengths, {.capacity = 512, .sort_divisor = divisor, .seed = 3});
    double distinct = 0;
    for (int64_t b = 0; b < p.num_bins(); ++b) {
      std::vector<int32_t> l;
      for (int64_t s : p.bin(b)) l.push_back(lengths[size_t(s)]);
      std::sort(l.begin(), l.end());
      distinct += double(std::unique(l.begin(), l.end()) - l.begin());
    }
    return distinct / double(p.num_bins());
  };
  EXPECT_GT(mean_distinct(8), 8.0);  // of the 10 lengths
  EXPECT_LT(mean_distinct(0), 2.5);  // everything sorted: runs of one or two lengths
}

TEST(PackerTest, SequentialIsNextFitInOrder) {
  const std::vector<int32_t> lengths = {4, 4, 3, 6, 1, 1, 1, 9};
  const Packing p = *PackSamples(lengths, {.capacity = 10, .bin_size = 3, .sequential = true});
  EXPECT_EQ(Bins(p), (std::vector<std::vector<int64_t>>{{0, 1}, {2, 3, 4}, {5, 6}, {7}}));
}

TEST(PackerTest, ErrorsNameTheSample) {
  auto too_long = PackSamples(std::vector<int32_t>{3, 11}, {.capacity = 10});
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("sample 1 has length 11"), std::string::npos)
      << too_long.status();
  EXPECT_FALSE(PackSamples(std::vector<int32_t>{0}, {.capacity = 10}).ok());
  EXPECT_FALSE(PackSamples(std::vector<int32_t>{1}, {.capacity = 0}).ok());
  EXPECT_FALSE(PackSamples(std::vector<int32_t>{1}, {.capacity = 5, .bin_size = 0}).ok());
  auto empty = PackSamples(std::vector<int32_t>{}, {.capacity = 5});
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->num_bins(), 0);
}

}  // namespace
}  // namespace loom::data
