#include "kernels/cuda/testing/host_buffer.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace loom::kernel_testing {
namespace {

TEST(HostBufferTest, StartsAsNanAtTheRequestedAlignment) {
  for (DType dtype : kAllDTypes) {
    for (int64_t offset : {0, 1, 3}) {
      SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " offset ", offset));
      const HostBuffer b(dtype, 13, offset);
      EXPECT_EQ(b.count(), 13);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, size_t(offset) * SizeOf(dtype));
      for (int64_t i = 0; i < b.count(); ++i) {
        if (IsFloating(dtype)) {
          EXPECT_TRUE(std::isnan(b.Get(i))) << i;
        } else if (dtype == DType::kBool) {
          EXPECT_EQ(b.Get(i), 1.0) << i;
        } else {
          EXPECT_EQ(b.Get(i), -1.0) << i;  // all bits set
        }
      }
      EXPECT_TRUE(b.PaddingIntact());
    }
  }
}

TEST(HostBufferTest, SetRoundsLikeTheRuntime) {
  HostBuffer bf16(DType::kBF16, 2), i32(DType::kI32, 1), flag(DType::kBool, 1);
  const double v = 1.0 + 1.0 / 256 + 1e-9;  // just above a bf16 tie
  bf16.Set(0, v);
  EXPECT_EQ(bf16.Get(0), ToDouble(FromDouble<BFloat16>(v)));
  EXPECT_EQ(bf16.Get(0), RoundTo(DType::kBF16, v));
  EXPECT_NE(bf16.Get(0), v);
  bf16.Set(1, -3.5);
  EXPECT_EQ(bf16.as<BFloat16>()[1].bits, BFloat16(-3.5f).bits);
  i32.Set(0, -2.75);
  EXPECT_EQ(i32.Get(0), -2.0);
  EXPECT_EQ(RoundTo(DType::kI32, -2.75), -2.0);
  flag.Set(0, 0.0);
  EXPECT_EQ(flag.Get(0), 0.0);
}

TEST(HostBufferTest, FillRandomIsSeededInRangeAndMatchesRandomValues) {
  HostBuffer a(DType::kF64, 1000), b(DType::kF64, 1000), c(DType::kF64, 1000);
  a.FillRandom(7, -2.0, 3.0);
  b.FillRandom(7, -2.0, 3.0);
  c.FillRandom(8, -2.0, 3.0);
  EXPECT_TRUE(a.BitEqual(b));
  EXPECT_FALSE(a.BitEqual(c));
  int beyond_f32 = 0;
  double low = 1e9, high = -1e9;
  for (int64_t i = 0; i < a.count(); ++i) {
    const double x = a.Get(i);
    low = std::min(low, x);
    high = std::max(high, x);
    beyond_f32 += double(float(x)) != x;
  }
  EXPECT_GE(low, -2.0);
  EXPECT_LT(high, 3.0);
  EXPECT_LT(low, -1.9);  // the whole range is covered
  EXPECT_GT(high, 2.9);
  EXPECT_GT(beyond_f32, 990);  // f64 inputs use a double's 53 bits, not f32's 24

  const std::vector<double> d = RandomValues<double>(1000, 7, -2.0, 3.0);
  EXPECT_EQ(d, a.ToDoubles());
  HostBuffer h(DType::kF16, 50);
  h.FillRandom(9);
  const std::vector<Float16> f = RandomValues<Float16>(50, 9);
  EXPECT_EQ(std::memcmp(f.data(), h.data(), 50 * sizeof(Float16)), 0);
}

TEST(HostBufferTest, CopiesAreDeep) {
  HostBuffer a(DType::kF32, 5, 1);
  a.FillValue(2.0);
  HostBuffer b = a;
  EXPECT_TRUE(b.BitEqual(a));
  EXPECT_EQ(b.offset(), 1);
  EXPECT_NE(b.data(), a.data());
  b.Set(4, 3.0);
  EXPECT_FALSE(b.BitEqual(a));
  EXPECT_EQ(a.Get(4), 2.0);
  a = b;
  EXPECT_TRUE(a.BitEqual(b));
  EXPECT_FALSE(a.BitEqual(HostBuffer(DType::kF32, 4, 1)));
  EXPECT_FALSE(HostBuffer(DType::kI32, 2).BitEqual(HostBuffer(DType::kF32, 2)));
}

TEST(HostBufferTest, PaddingIntactSeesWritesOutsideTheElements) {
  HostBuffer before(DType::kF32, 8, 2), after(DType::kF32, 8, 2);
  before.FillValue(0.0);
  EXPECT_TRUE(before.PaddingIntact());
  static_cast<unsigned char*>(before.data())[-1] = 0;
  EXPECT_FALSE(before.PaddingIntact());
  static_cast<float*>(after.data())[8] = 1.0f;  // one past the end, inside the allocation
  EXPECT_FALSE(after.PaddingIntact());
  EXPECT_TRUE(HostBuffer(after).BitEqual(after));
  EXPECT_FALSE(HostBuffer(after).PaddingIntact());  // copies keep the padding too
}

TEST(HostBufferDeathTest, ChecksIndicesAndTypes) {
  HostBuffer b(DType::kF32, 4);
  EXPECT_DEATH(b.Get(4), "HostBuffer::Get\\(4\\) of 4 elements");
  EXPECT_DEATH(b.Set(-1, 0.0), "HostBuffer::Set\\(-1\\) of 4 elements");
  EXPECT_DEATH(b.as<double>(), "as<f64>\\(\\) of a f32 buffer");
}

}  // namespace
}  // namespace loom::kernel_testing
