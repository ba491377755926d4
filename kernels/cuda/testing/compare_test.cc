#include "kernels/cuda/testing/compare.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace loom::kernel_testing {
namespace {

TEST(CompareTest, ToleranceAllowsAboutAnUlpOfEachDtype) {
  const struct {
    DType dtype;
    double ulp_at_one;  // the spacing of the dtype's numbers just above 1
  } cases[] = {{DType::kF64, 0x1p-52},
               {DType::kF32, 0x1p-23},
               {DType::kBF16, 0x1p-7},
               {DType::kF16, 0x1p-10}};
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(DTypeName(c.dtype)));
    const Tol tol = Tolerance(c.dtype);
    EXPECT_TRUE(Near(1 + c.ulp_at_one, 1, tol));
    EXPECT_TRUE(Near(-1000 * (1 + c.ulp_at_one), -1000, tol));
    EXPECT_FALSE(Near(1 + 1e4 * c.ulp_at_one, 1, tol));
    EXPECT_FALSE(Near(1000 * (1 + 1e4 * c.ulp_at_one), 1000, tol));
  }
  EXPECT_FALSE(Near(3, 2, Tolerance(DType::kI32)));
  EXPECT_TRUE(Near(2, 2, Tolerance(DType::kI64)));
  EXPECT_TRUE(Near(2.1, 2, 0.1 * Tol{.atol = 0, .rtol = 1}));
  EXPECT_FALSE(Near(2.3, 2, 0.1 * Tol{.atol = 0, .rtol = 1}));
  EXPECT_EQ(Tolerance<BFloat16>().rtol, Tolerance(DType::kBF16).rtol);
}

TEST(CompareTest, NanAndInfinityMatchOnlyThemselves) {
  const double inf = std::numeric_limits<double>::infinity();
  const Tol loose{1e300, 1e300};
  EXPECT_TRUE(Near(NAN, NAN, loose));
  EXPECT_FALSE(Near(NAN, 1, loose));
  EXPECT_FALSE(Near(1, NAN, loose));
  EXPECT_TRUE(Near(-inf, -inf, loose));
  EXPECT_FALSE(Near(inf, -inf, loose));
  EXPECT_FALSE(Near(1e308, inf, loose));
  EXPECT_TRUE(Same(NAN, NAN));
  EXPECT_TRUE(Same(-0.0, 0.0));
  EXPECT_FALSE(Same(1, 1 + 0x1p-52));
  EXPECT_FALSE(Same(NAN, 0));
}

TEST(CompareTest, ExpectAllCloseCountsMismatches) {
  const std::vector<float> got = {1.0f, 2.0f, NAN, 4.0f};
  ExpectAllClose(got, std::vector<double>{1.0, 2.0, NAN, 4.0}, Tolerance<float>());
  EXPECT_NONFATAL_FAILURE(
      ExpectAllClose(got, std::vector<double>{1.0, 2.5, NAN, 4.0}, Tolerance<float>(), "y"),
      "y: 1 of 4 outside");
  EXPECT_NONFATAL_FAILURE(
      ExpectAllClose(got, std::vector<double>{1.0, 2.0, 3.0, 4.0}, {1, 1}, "nan"),
      "[2] got nan want 3");
}

TEST(CompareTest, ExpectBitIdenticalComparesBits) {
  const std::vector<float> a = {0.0f, 1.0f, NAN};
  ExpectBitIdentical(a, a);
  EXPECT_NONFATAL_FAILURE(ExpectBitIdentical(a, std::vector<float>{-0.0f, 1.0f, NAN}, "z"),
                          "z: 1 of 3 differ");
  EXPECT_NONFATAL_FAILURE(ExpectBitIdentical(a, std::vector<float>{0.0f, 1.0f, -NAN}, "payload"),
                          "payload: 1 of 3 differ");
}

TEST(CompareTest, RelativeErrorIsTheNormOfTheDifference) {
  EXPECT_EQ(RelativeError({1, 2, 3}, {1, 2, 3}), 0.0);
  EXPECT_DOUBLE_EQ(RelativeError({3, 0}, {0, 4}), 5.0 / 4.0);
  EXPECT_EQ(RelativeError({0, 0}, {0, 0}), 0.0);
  EXPECT_TRUE(std::isnan(RelativeError({1, NAN}, {1, 2})));
}

}  // namespace
}  // namespace loom::kernel_testing
