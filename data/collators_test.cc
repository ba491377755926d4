#include "data/collators.h"

#include "gtest/gtest.h"

namespace loom::data {
namespace {

constexpr int64_t kI = kIgnoreIndex;
using V = std::vector<int64_t>;

// The samples of the spec's worked example (axolotl-behavior.md 4.3).
const Example kA{.input_ids = {11, 12, 13}, .labels = {-100, 12, 13}};
const Example kB{.input_ids = {21, 22}, .labels = {-100, 22}};
const Example kC{.input_ids = {31, 32, 33, 34}, .labels = {-100, -100, 33, 34}};
const Example kD{.input_ids = {41, 42, 43, 44, 45, 46, 47},
                 .labels = {-100, -100, -100, 44, 45, 46, 47}};

TEST(CollatePackedTest, SpecWorkedExampleV1AndV2) {
  for (PackedCollator kind : {PackedCollator::kV1, PackedCollator::kV2}) {
    const Batch b =
        CollatePacked({{&kA, &kB, &kC}}, {.pad_id = 0, .pad_to_multiple = 10, .kind = kind});
    ASSERT_EQ(b.input_ids.sizes(), Dims({1, 10}));
    EXPECT_EQ(b.input_ids.ToVector<int64_t>(), (V{11, 12, 13, 21, 22, 31, 32, 33, 34, 0}));
    EXPECT_EQ(b.labels.ToVector<int64_t>(), (V{kI, 12, 13, kI, 22, kI, kI, 33, 34, kI}));
    EXPECT_EQ(b.position_ids.ToVector<int64_t>(), (V{0, 1, 2, 0, 1, 0, 1, 2, 3, 0}));
    EXPECT_EQ(b.attention_mask.ToVector<int64_t>(), kind == PackedCollator::kV1
                                                        ? (V{1, 1, 1, 1, 1, 1, 1, 1, 1, 0})
                                                        : (V{1, 1, 1, 2, 2, 3, 3, 3, 3, 0}));
    // Derived for varlen attention: the padding tail is a segment of its own.
    EXPECT_EQ(b.cu_seqlens.ToVector<int32_t>(), (std::vector<int32_t>{0, 3, 5, 9, 10}));
    EXPECT_EQ(b.max_seqlen, 4);
    // Targets: labels shifted by one; never across a sample boundary.
    EXPECT_EQ(b.targets.ToVector<int64_t>(), (V{12, 13, kI, 22, kI, kI, 33, 34, kI, kI}));
    EXPECT_EQ(b.num_trainable_tokens, 5);
    EXPECT_EQ(b.num_tokens, 9);
  }
}

TEST(CollatePackedTest, PadToTwelve) {
  const Batch b = CollatePacked({{&kA, &kB, &kC}}, {.pad_id = 0, .pad_to_multiple = 12});
  ASSERT_EQ(b.input_ids.sizes(), Dims({1, 12}));
  EXPECT_EQ(b.input_ids.ToVector<int64_t>(), (V{11, 12, 13, 21, 22, 31, 32, 33, 34, 0, 0, 0}));
  EXPECT_EQ(b.labels.ToVector<int64_t>(), (V{kI, 12, 13, kI, 22, kI, kI, 33, 34, kI, kI, kI}));
  EXPECT_EQ(b.position_ids.ToVector<int64_t>(), (V{0, 1, 2, 0, 1, 0, 1, 2, 3, 0, 1, 2}));
  EXPECT_EQ(b.attention_mask.ToVector<int64_t>(), (V{1, 1, 1, 2, 2, 3, 3, 3, 3, 0, 0, 0}));
  EXPECT_EQ(b.cu_seqlens.ToVector<int32_t>(), (std::vector<int32_t>{0, 3, 5, 9, 12}));
}

TEST(CollatePackedTest, TwoBinsInOneBatch) {
  const Batch b = CollatePacked({{&kA, &kB, &kC}, {&kD}}, {.pad_id = 0, .pad_to_multiple = 10});
  ASSERT_EQ(b.input_ids.sizes(), Dims({2, 10}));
  const V ids = b.input_ids.ToVector<int64_t>(), labels = b.labels.ToVector<int64_t>(),
          pos = b.position_ids.ToVector<int64_t>(), mask = b.attention_mask.ToVector<int64_t>();
  EXPECT_EQ(V(ids.begin() + 10, ids.end()), (V{41, 42, 43, 44, 45, 46, 47, 0, 0, 0}));
  EXPECT_EQ(V(labels.begin() + 10, labels.end()), (V{kI, kI, kI, 44, 45, 46, 47, kI, kI, kI}));
  EXPECT_EQ(V(pos.begin() + 10, pos.end()), (V{0, 1, 2, 3, 4, 5, 6, 0, 1, 2}));
  EXPECT_EQ(V(mask.begin() + 10, mask.end()), (V{1, 1, 1, 1, 1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(b.cu_seqlens.ToVector<int32_t>(), (std::vector<int32_t>{0, 3, 5, 9, 10, 17, 20}));
  EXPECT_EQ(b.max_seqlen, 7);
  EXPECT_EQ(b.num_trainable_tokens, 5 + 4);
}

TEST(CollatePackedTest, FirstLabelOfEverySampleIsMasked) {
  // Pretokenized rows may label their first token; packing must not train
  // the previous sample's last token on it.
  const Example e{.input_ids = {5, 6}, .labels = {5, 6}};
  const Batch b = CollatePacked({{&e, &e}}, {.pad_id = 9});
  EXPECT_EQ(b.labels.ToVector<int64_t>(), (V{kI, 6, kI, 6}));
  EXPECT_EQ(b.targets.ToVector<int64_t>(), (V{6, kI, 6, kI}));
  EXPECT_EQ(b.cu_seqlens.ToVector<int32_t>(), (std::vector<int32_t>{0, 2, 4}));
}

TEST(CollatePackedTest, AnEmptyBinIsARowOfPadding) {
  const Batch b = CollatePacked({{&kB}, {}}, {.pad_id = 7, .pad_to_multiple = 4});
  EXPECT_EQ(b.input_ids.ToVector<int64_t>(), (V{21, 22, 7, 7, 7, 7, 7, 7}));
  EXPECT_EQ(b.cu_seqlens.ToVector<int32_t>(), (std::vector<int32_t>{0, 2, 4, 8}));
  EXPECT_EQ(b.num_trainable_tokens, 1);
}

TEST(CollateTest, PadsShiftsAndCounts) {
  Example a{.input_ids = {256, 10, 11, 12, 257}, .labels = {-100, -100, 11, 12, 257}};
  Example b{.input_ids = {256, 20, 257}, .labels = {-100, 20, 257}};
  Batch batch = Collate({&a, &b}, /*pad_id=*/258);
  ASSERT_EQ(batch.input_ids.sizes(), Dims({2, 5}));
  EXPECT_EQ(batch.input_ids.ToVector<int64_t>(), (V{256, 10, 11, 12, 257, 256, 20, 257, 258, 258}));
  // target[t] = label[t + 1]; -100 at each row's last token and on padding.
  EXPECT_EQ(batch.targets.ToVector<int64_t>(),
            (V{-100, 11, 12, 257, -100, 20, 257, -100, -100, -100}));
  EXPECT_EQ(batch.position_ids.ToVector<int64_t>(), (V{0, 1, 2, 3, 4, 0, 1, 2, 3, 4}));
  EXPECT_EQ(batch.attention_mask.ToVector<int64_t>(), (V{1, 1, 1, 1, 1, 1, 1, 1, 0, 0}));
  EXPECT_FALSE(batch.cu_seqlens.defined());
  EXPECT_EQ(batch.num_tokens, 8);
  EXPECT_EQ(batch.num_trainable_tokens, 5);
}

TEST(CollateTest, PadsToAMultiple) {
  Example a{.input_ids = {1, 2, 3}, .labels = {1, 2, 3}};
  Batch batch = Collate({&a}, 0, /*pad_to_multiple=*/8);
  EXPECT_EQ(batch.input_ids.sizes(), Dims({1, 8}));
  EXPECT_EQ(batch.num_trainable_tokens, 2);
}

TEST(CollateTest, AxolotlPadMultiple) {
  EXPECT_EQ(PadMultiple(true, 0, 100), 128);  // 64 * ceil(100 / 64)
  EXPECT_EQ(PadMultiple(true, 10, 100), 100);
  EXPECT_EQ(PadMultiple(true, 0, 10), 64);
  EXPECT_EQ(PadMultiple(false, 16, 100), 16);
  EXPECT_EQ(PadMultiple(false, 0, 100), 1);
}

}  // namespace
}  // namespace loom::data
