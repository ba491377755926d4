// How the emulated kernel tests compare results with their references: one
// tolerance per dtype, a NaN-aware closeness test (a std::max-style check
// would let a NaN pass and hide an unwritten output), exact and bit-for-bit
// equality, and the relative error of a whole tensor.
//
//   EXPECT_TRUE(Near(out.Get(i), RoundTo(dtype, want[i]), Tolerance(dtype))) << i;
//   ExpectAllClose(y, want_y, Tolerance<BFloat16>(), "y");  // counts and lists mismatches
//   ExpectBitIdentical(gw, first_gw, "gw across schedules");
//   EXPECT_LE(RelativeError(out.ToDoubles(), want), 2e-2);
#ifndef LOOM_KERNELS_CUDA_TESTING_COMPARE_H_
#define LOOM_KERNELS_CUDA_TESTING_COMPARE_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/dtype.h"

namespace loom::kernel_testing {

// got is close to want when |got - want| <= atol + rtol * |want|.
struct Tol {
  double atol = 0, rtol = 0;
  friend Tol operator*(double k, Tol t) { return {k * t.atol, k * t.rtol}; }
};

// A kernel result in `dtype` against a double reference rounded to `dtype`:
// it may differ in the last bit or two (f32 arithmetic, another summation
// order, the device's math functions). Zero for integer and bool dtypes.
Tol Tolerance(DType dtype);
template <typename T>
Tol Tolerance() {
  return Tolerance(DTypeOf<T>::value);
}

// NaN matches only NaN, an infinity only itself; other values within `tol`.
bool IsNear(double got, double want, Tol tol);
::testing::AssertionResult Near(double got, double want, Tol tol);
// got and want are the same number (or both NaN).
::testing::AssertionResult Same(double got, double want);

// IsNear element by element; reports how many differ and the first few.
template <typename T, typename U>
void ExpectAllClose(const std::vector<T>& got, const std::vector<U>& want, Tol tol,
                    std::string_view what = "") {
  ASSERT_EQ(got.size(), want.size()) << what;
  int64_t bad = 0;
  std::string first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = ToDouble(got[i]), w = ToDouble(want[i]);
    if (!IsNear(g, w, tol) && ++bad <= 5)
      absl::StrAppend(&first, "\n  [", i, "] got ", g, " want ", w);
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " outside atol " << tol.atol
                    << " rtol " << tol.rtol << first;
}

// The stored bits agree (NaN payloads included); reports how many differ.
template <typename T>
void ExpectBitIdentical(const std::vector<T>& got, const std::vector<T>& want,
                        std::string_view what = "") {
  ASSERT_EQ(got.size(), want.size()) << what;
  int64_t bad = 0;
  std::string first;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0 && ++bad <= 5) {
      absl::StrAppend(&first, "\n  [", i, "] got ", ToDouble(got[i]), " want ", ToDouble(want[i]));
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " differ" << first;
}

// ||got - want|| / max(||want||, 1e-30) in the 2-norm; NaN if any element of
// got is NaN (so that EXPECT_LE fails).
double RelativeError(const std::vector<double>& got, const std::vector<double>& want);

}  // namespace loom::kernel_testing

#endif  // LOOM_KERNELS_CUDA_TESTING_COMPARE_H_
