#include "data/multipack_sampler.h"

#include <random>

#include "gtest/gtest.h"

namespace loom::data {
namespace {

std::vector<int32_t> RandomLengths(int64_t n, int32_t hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> l(static_cast<size_t>(n));
  for (int32_t& x : l) x = 1 + int32_t(rng() % uint32_t(hi));
  return l;
}

// Over all ranks of one epoch: the same micro-batch count everywhere, K bins
// per micro-batch, no bin over capacity, every sample exactly once.
TEST(MultipackSamplerTest, EveryRankSameCountEverySampleOnce) {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 30; ++trial) {
    const int64_t n = int64_t(rng() % 700), capacity = 16 + int64_t(rng() % 200);
    const int64_t dp = 1 + int64_t(rng() % 4), k = 1 + int64_t(rng() % 3);
    const std::vector<int32_t> lengths = RandomLengths(n, int32_t(capacity), uint32_t(trial));
    const int64_t group_size = 1 + int64_t(rng() % 300), bin_size = 1 + int64_t(rng() % 30);
    std::vector<int> seen(static_cast<size_t>(n), 0);
    int64_t count = -1;
    for (int64_t rank = 0; rank < dp; ++rank) {
      MultipackSampler sampler(lengths, {.pack = {.capacity = capacity,
                                                  .group_size = group_size,
                                                  .bin_size = bin_size,
                                                  .seed = 9},
                                         .bins_per_micro_batch = k,
                                         .dp_rank = rank,
                                         .dp_size = dp});
      auto plan = sampler.Plan(trial % 3);
      ASSERT_TRUE(plan.ok()) << plan.status();
      if (count < 0) count = (*plan)->micro_batches_per_rank;
      ASSERT_EQ((*plan)->micro_batches_per_rank, count) << "rank " << rank;
      ASSERT_EQ((*plan)->bins.num_bins(), count * k * dp);
      for (int64_t m = 0; m < count; ++m) {
        const auto bins = sampler.MicroBatch(**plan, m);
        ASSERT_EQ(int64_t(bins.size()), k);
        for (auto bin : bins) {
          int64_t used = 0;
          for (int64_t s : bin) {
            ++seen[size_t(s)];
            used += lengths[size_t(s)];
          }
          ASSERT_LE(used, capacity);
        }
      }
    }
    for (int64_t s = 0; s < n; ++s) ASSERT_EQ(seen[size_t(s)], 1) << "trial " << trial;
  }
}

TEST(MultipackSamplerTest, BalanceSplitsTheFullestBinsFirst) {
  Packing p;
  p.AddBin(std::vector<int64_t>{0, 1, 2, 3});
  p.AddBin(std::vector<int64_t>{4});
  p.AddBin(std::vector<int64_t>{5, 6});
  int64_t split = 0, empty = 0;
  BalanceBins(4, &p, &split, &empty);
  EXPECT_EQ(split, 1);
  EXPECT_EQ(empty, 0);
  ASSERT_EQ(p.num_bins(), 4);
  EXPECT_EQ(std::vector<int64_t>(p.bin(0).begin(), p.bin(0).end()), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(std::vector<int64_t>(p.bin(3).begin(), p.bin(3).end()), (std::vector<int64_t>{2, 3}));
  BalanceBins(4, &p, &split, &empty);  // already a multiple
  EXPECT_EQ(split + empty, 0);
}

TEST(MultipackSamplerTest, EmptyBinsOnlyWhenNothingCanBeSplit) {
  // Three full-capacity samples for two ranks: one rank gets a padding bin.
  MultipackSampler r0({8, 8, 8}, {.pack = {.capacity = 8}, .dp_rank = 0, .dp_size = 2});
  const EpochPlan* plan = *r0.Plan(0);
  EXPECT_EQ(plan->packed_bins, 3);
  EXPECT_EQ(plan->empty_bins, 1);
  EXPECT_EQ(plan->split_bins, 0);
  EXPECT_EQ(plan->micro_batches_per_rank, 2);
}

TEST(MultipackSamplerTest, DeterministicAndResumable) {
  const std::vector<int32_t> lengths = RandomLengths(3000, 256, 4);
  const SamplerOptions o{.pack = {.capacity = 512, .seed = 3}, .dp_rank = 1, .dp_size = 2};
  MultipackSampler a(lengths, o);
  const EpochPlan plan0 = **a.Plan(0);
  const EpochPlan plan2 = **a.Plan(2);
  EXPECT_NE(plan0.bins.samples, plan2.bins.samples) << "epochs should repack";
  // A fresh sampler (a resumed run) asking for epoch 2, micro-batch 5.
  MultipackSampler b(lengths, o);
  const EpochPlan* resumed = *b.Plan(2);
  EXPECT_EQ(resumed->bins.samples, plan2.bins.samples);
  const auto x = a.MicroBatch(plan2, 5), y = b.MicroBatch(*resumed, 5);
  EXPECT_EQ(std::vector<int64_t>(x[0].begin(), x[0].end()),
            std::vector<int64_t>(y[0].begin(), y[0].end()));
  EXPECT_GT(plan0.efficiency, 0.95);
}

TEST(MultipackSamplerTest, AxolotlStepEstimate) {
  // floor(0.99 * 1e6 / 0.9 / 1000) = 1100 rows; 1100 // 32 = 34; (34 - 1) * 2.
  EXPECT_EQ(EstimatedTotalSteps(1000000, 0.9, 1000, 32, 2.0), 66);
  EXPECT_EQ(EstimatedTotalSteps(10, 1.0, 1000, 32, 1.0), 1);
}

TEST(MultipackSamplerTest, BadRankIsAnError) {
  MultipackSampler s({1, 2}, {.pack = {.capacity = 8}, .dp_rank = 2, .dp_size = 2});
  EXPECT_FALSE(s.Plan(0).ok());
}

}  // namespace
}  // namespace loom::data
