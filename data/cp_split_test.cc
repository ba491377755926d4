#include "data/cp_split.h"

#include <cmath>
#include <map>
#include <random>

#include "data/collators.h"
#include "gtest/gtest.h"

namespace loom::data {
namespace {

Example Sample(int64_t n, int64_t prompt, int32_t base) {
  Example e;
  for (int64_t i = 0; i < n; ++i) {
    e.input_ids.push_back(base + int32_t(i));
    e.labels.push_back(i < prompt ? kIgnoreIndex : base + int32_t(i));
  }
  return e;
}

struct Token {
  int64_t id, target, position;
};

// Where a local token came from: (row, segment, offset in padded segment).
struct Origin {
  int64_t row, segment, offset;
  bool operator<(const Origin& o) const {
    return std::tie(row, segment, offset) < std::tie(o.row, o.segment, o.offset);
  }
};

// A deterministic stand-in for attention: out[q] = sum over the keys q may
// see of sin(q_value * k_value), with values fixed per unsplit token.
double Value(int64_t row, int64_t index) { return 0.1 + 0.37 * double(row * 1000 + index); }

void CheckSplit(const Batch& full, int64_t cp) {
  const int64_t t = full.input_ids.size(1);
  const std::vector<int64_t> ids = full.input_ids.ToVector<int64_t>(),
                             targets = full.targets.ToVector<int64_t>(),
                             pos = full.position_ids.ToVector<int64_t>();
  // Segments of the unsplit batch and each token's reference output.
  std::vector<int32_t> cu =
      full.cu_seqlens.defined() ? full.cu_seqlens.ToVector<int32_t>() : std::vector<int32_t>{};
  if (cu.empty()) {
    for (int64_t r = 0; r <= full.input_ids.size(0); ++r) cu.push_back(int32_t(r * t));
  }
  std::map<Origin, double> reference;
  std::map<Origin, Token> truth;
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    for (int64_t q = cu[s]; q < cu[s + 1]; ++q) {
      double out = 0;
      for (int64_t k = cu[s]; k <= q; ++k)
        out += std::sin(Value(q / t, q % t) * Value(k / t, k % t));
      const Origin o{q / t, int64_t(s), q - cu[s]};
      reference[o] = out;
      truth[o] = {ids[size_t(q)], targets[size_t(q)], pos[size_t(q)]};
    }
  }

  const std::vector<CpShard> shards = SplitForContextParallel(full, cp, /*pad_id=*/0);
  ASSERT_EQ(int64_t(shards.size()), cp);
  // Gather every rank's tokens with their origin (what a ring would see).
  std::map<Origin, double> key_values;
  std::map<Origin, std::pair<int64_t, int64_t>> where;  // origin -> (rank, local flat index)
  const int64_t local_t = shards[0].batch.input_ids.size(1);
  int64_t trainable = 0;
  std::vector<double> work(size_t(cp), 0);
  for (int64_t r = 0; r < cp; ++r) {
    const Batch& b = shards[size_t(r)].batch;
    ASSERT_EQ(b.input_ids.size(1), local_t) << "ranks must get equal lengths";
    trainable += b.num_trainable_tokens;
    for (const CpChunk& ch : shards[size_t(r)].chunks) {
      const int64_t seg_len = cu[size_t(ch.segment) + 1] - cu[size_t(ch.segment)];
      for (int64_t i = 0; i < ch.length; ++i) {
        const Origin o{ch.row, ch.segment, ch.segment_offset + i};
        ASSERT_EQ(where.count(o), 0u) << "token on two ranks";
        where[o] = {r, ch.row * local_t + ch.local_start + i};
        work[size_t(r)] += double(o.offset + 1);  // causal keys seen
        if (o.offset < seg_len) key_values[o] = Value(ch.row, ch.source_start + i);
      }
    }
  }
  EXPECT_EQ(trainable, full.num_trainable_tokens);
  for (int64_t r = 1; r < cp; ++r) EXPECT_EQ(work[size_t(r)], work[0]) << "unbalanced causal work";
  for (const auto& [o, tok] : truth) {
    ASSERT_EQ(where.count(o), 1u) << "token lost";
    const auto [rank, flat] = where[o];
    const Batch& b = shards[size_t(rank)].batch;
    EXPECT_EQ(b.input_ids.ToVector<int64_t>()[size_t(flat)], tok.id);
    EXPECT_EQ(b.targets.ToVector<int64_t>()[size_t(flat)], tok.target);
    EXPECT_EQ(b.position_ids.ToVector<int64_t>()[size_t(flat)], tok.position) << "true position";
    // Attention over gathered keys with the per-sample causal mask from the
    // chunk metadata alone gives the unsplit output.
    double out = 0;
    for (const auto& [k, v] : key_values) {
      if (k.row == o.row && k.segment == o.segment && k.offset <= o.offset) {
        out += std::sin(Value(o.row, cu[size_t(o.segment)] % t + o.offset) * v);
      }
    }
    EXPECT_NEAR(out, reference[o], 1e-9);
  }
}

TEST(CpSplitTest, PackedRowKeepsPositionsTargetsAndMasks) {
  const Example a = Sample(5, 1, 10), b = Sample(7, 3, 20), c = Sample(3, 0, 30);
  const Batch full = CollatePacked({{&a, &b, &c}}, {.pad_id = 0, .pad_to_multiple = 16});
  for (int64_t cp : {2, 3, 4}) {
    SCOPED_TRACE(cp);
    CheckSplit(full, cp);
  }
}

TEST(CpSplitTest, ChunkLayoutIsZigzag) {
  // One sample of 8 tokens, cp = 2: chunks of 2; rank 0 gets chunks 0 and 3.
  const Example a = Sample(8, 0, 100);
  const Batch full = CollatePacked({{&a}}, {.pad_id = 0});
  const std::vector<CpShard> s = SplitForContextParallel(full, 2, 0);
  EXPECT_EQ(s[0].batch.input_ids.ToVector<int64_t>(), (std::vector<int64_t>{100, 101, 106, 107}));
  EXPECT_EQ(s[1].batch.input_ids.ToVector<int64_t>(), (std::vector<int64_t>{102, 103, 104, 105}));
  EXPECT_EQ(s[0].batch.position_ids.ToVector<int64_t>(), (std::vector<int64_t>{0, 1, 6, 7}));
  // Targets were shifted before the split: token 101's target is 102, on the other rank.
  EXPECT_EQ(s[0].batch.targets.ToVector<int64_t>(), (std::vector<int64_t>{101, 102, 107, -100}));
  EXPECT_EQ(s[0].batch.cu_seqlens.ToVector<int32_t>(), (std::vector<int32_t>{0, 4}));
}

TEST(CpSplitTest, PlainBatchesAndRandomPackings) {
  const Example a = Sample(9, 2, 1), b = Sample(4, 1, 50);
  CheckSplit(Collate({&a, &b}, 0), 3);
  std::mt19937 rng(3);
  for (int trial = 0; trial < 10; ++trial) {
    std::vector<Example> ex;
    for (int i = 0; i < 6; ++i) ex.push_back(Sample(1 + rng() % 13, rng() % 3, 10 * i));
    std::vector<std::vector<const Example*>> bins(2);
    for (int i = 0; i < 6; ++i) bins[size_t(i % 2)].push_back(&ex[size_t(i)]);
    CheckSplit(CollatePacked(bins, {.pad_id = 0, .pad_to_multiple = 1 + int64_t(rng() % 8)}),
               1 + int64_t(rng() % 4) + 1);
  }
}

}  // namespace
}  // namespace loom::data
