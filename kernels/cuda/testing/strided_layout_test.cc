#include "kernels/cuda/testing/strided_layout.h"

#include "gtest/gtest.h"

namespace loom::kernel_testing {
namespace {

TEST(StridedLayoutTest, OffsetsAndSpans) {
  // [2, 3] viewed transposed out of a [3, 2] buffer.
  const std::vector<int64_t> sizes = {2, 3}, strides = {1, 2};
  const int64_t want[] = {0, 2, 4, 1, 3, 5};
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(OffsetOf(i, sizes, strides), want[i]) << i;
  EXPECT_EQ(Span(sizes, strides), 6);
  EXPECT_EQ(Span({4, 5}, {0, 1}), 5);  // broadcast along dim 0
  EXPECT_EQ(Span({3, 0}, {1, 1}), 0);
  EXPECT_EQ(Span({}, {}), 1);
  EXPECT_EQ(Contiguous({2, 3, 4}), (std::vector<int64_t>{12, 4, 1}));
  EXPECT_EQ(Numel({2, 3, 4}), 24);
  EXPECT_EQ(Numel({}), 1);
  EXPECT_EQ(Numel({5, 0}), 0);
}

}  // namespace
}  // namespace loom::kernel_testing
