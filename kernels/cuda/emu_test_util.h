// Helpers for tests that run CUDA kernels under the emulator against host
// references: the scheduling policies and seeds every kernel test covers,
// seeded inputs, and NaN-aware comparisons with per-dtype tolerances.
//
//   for (const EmuRun& run : EmuRuns()) {
//     SCOPED_TRACE(run.Name());
//     emu::ScopedOptions o(run.options);
//     ASSERT_TRUE(LaunchFoo(...).ok());
//     ExpectAllClose(got, want, Tolerance<BFloat16>());
//   }
#ifndef LOOM_KERNELS_CUDA_EMU_TEST_UTIL_H_
#define LOOM_KERNELS_CUDA_EMU_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/emu/emulator.h"
#include "runtime/dtype.h"
#include "runtime/half.h"

namespace loom::testing {

// One emulated run: a scheduling policy and its seed.
struct EmuRun {
  emu::Options options;
  std::string Name() const {
    return absl::StrCat("policy ", emu::PolicyName(options.policy), " seed ", options.seed);
  }
};

// {thread-random, warp-serial} x `seeds` seeds: the runs every kernel test covers.
inline std::vector<EmuRun> EmuRuns(int seeds = 3) {
  std::vector<EmuRun> runs;
  for (emu::Policy p : {emu::Policy::kThreadRandom, emu::Policy::kWarpSerial}) {
    for (int s = 0; s < seeds; ++s) runs.push_back({{.policy = p, .seed = uint64_t(101 + s)}});
  }
  return runs;
}

// Uniform values in [lo, hi) rounded to T, from a fixed seed.
template <typename T>
std::vector<T> RandomValues(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> out(n);
  for (T& v : out) v = FromDouble<T>(dist(rng));
  return out;
}

// |got - want| <= atol + rtol * |want|.
struct Tol {
  double atol = 0, rtol = 0;
};

// Element-wise results of one rounding in T after f32/f64 arithmetic that may
// differ from the reference in the last bits (library functions, summation order).
template <typename T>
Tol Tolerance() {
  if constexpr (std::is_same_v<T, double>) return {1e-12, 1e-12};
  if constexpr (std::is_same_v<T, float>) return {1e-6, 1e-5};
  if constexpr (std::is_same_v<T, BFloat16>) return {1e-2, 1e-2};  // 2^-8 relative per rounding
  return {1e-3, 2e-3};                                             // f16: 2^-11 per rounding
}

// NaN-aware (a NaN never passes unless the reference is NaN too): reports the
// number of mismatches and the first few.
template <typename T, typename U>
void ExpectAllClose(const std::vector<T>& got, const std::vector<U>& want, Tol tol,
                    const std::string& what = "") {
  ASSERT_EQ(got.size(), want.size()) << what;
  int64_t bad = 0;
  std::string first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = ToDouble(got[i]), w = ToDouble(want[i]);
    const bool ok = std::isnan(w)
                        ? std::isnan(g)
                        : !std::isnan(g) && std::abs(g - w) <= tol.atol + tol.rtol * std::abs(w);
    if (!ok && ++bad <= 5) absl::StrAppend(&first, "\n  [", i, "] got ", g, " want ", w);
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " outside atol " << tol.atol
                    << " rtol " << tol.rtol << first;
}

// Bit-for-bit equality of the stored values (NaN payloads included).
template <typename T>
void ExpectBitIdentical(const std::vector<T>& got, const std::vector<T>& want,
                        const std::string& what = "") {
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

}  // namespace loom::testing

#endif  // LOOM_KERNELS_CUDA_EMU_TEST_UTIL_H_
