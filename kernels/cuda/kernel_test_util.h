// Helpers of the emulated kernel tests: host buffers of any dtype (which the
// emulated kernels read and write directly), rounding like the CPU runtime,
// NaN-aware comparisons and the schedules every kernel test runs under.
//
//   HostBuffer x(DType::kBF16, 100);
//   x.FillRandom(/*seed=*/1, -2.0, 2.0);
//   ForEachSchedule([&](const std::string& schedule) {
//     ASSERT_TRUE(LaunchUnary(...x.data()...).ok()) << schedule;
//     EXPECT_TRUE(Near(out.Get(i), want, Tolerance(DType::kBF16))) << schedule;
//   });
#ifndef LOOM_KERNELS_CUDA_KERNEL_TEST_UTIL_H_
#define LOOM_KERNELS_CUDA_KERNEL_TEST_UTIL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/emu/emulator.h"
#include "runtime/dtype.h"

namespace loom::ops_testing {

// `count` elements of `dtype` in 64-byte aligned host memory, starting
// `offset_elements` past the aligned address (to test misaligned views).
// Starts filled with 0xFF bytes: NaN for floats, so unwritten outputs show.
class HostBuffer {
 public:
  HostBuffer(DType dtype, int64_t count, int64_t offset_elements = 0);
  HostBuffer(const HostBuffer& other);
  HostBuffer& operator=(const HostBuffer& other);

  DType dtype() const { return dtype_; }
  int64_t count() const { return count_; }
  void* data() { return data_; }
  const void* data() const { return data_; }
  template <typename T>
  T* as() {
    return static_cast<T*>(data_);
  }

  double Get(int64_t i) const;
  // Stores `v` rounded as FromDouble<T> (runtime/dtype.h) does.
  void Set(int64_t i, double v);
  // Philox-uniform values in [low, high), rounded to the dtype.
  void FillRandom(uint64_t seed, double low, double high);
  std::vector<double> ToDoubles() const;
  bool BitEqual(const HostBuffer& other) const;

 private:
  DType dtype_;
  int64_t count_;
  int64_t offset_;
  std::shared_ptr<unsigned char> storage_;
  void* data_;
};

// `v` rounded to `dtype` as FromDouble (runtime/dtype.h) rounds it.
double RoundTo(DType dtype, double v);

// |got - want| <= tol * (1 + |want|), and NaN only where NaN is expected
// (std::max-style comparisons would let a NaN pass: spec pitfall 8).
::testing::AssertionResult Near(double got, double want, double tol);
// got and want are the same number (or both NaN).
::testing::AssertionResult Same(double got, double want);

// The tolerance of a kernel result in `dtype` against a double reference: a
// few units in the last place of the output type.
double Tolerance(DType dtype);

// The floating dtypes and all dtypes, for loops in tests.
inline const DType kFloatDTypes[] = {DType::kF32, DType::kF64, DType::kBF16, DType::kF16};

// Runs `body` under {kThreadRandom, kWarpSerial} x `seeds` seeds with the
// emulator options set; `body` gets "policy seed N" for failure messages.
void ForEachSchedule(const std::function<void(const std::string& schedule)>& body, int seeds = 2);

// Row-major linear index -> element offset for sizes/strides.
int64_t OffsetOf(int64_t linear, const std::vector<int64_t>& sizes,
                 const std::vector<int64_t>& strides);
// Elements a strided view spans: 1 + max offset (0 for an empty view).
int64_t Span(const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides);
std::vector<int64_t> Contiguous(const std::vector<int64_t>& sizes);
int64_t Numel(const std::vector<int64_t>& sizes);

}  // namespace loom::ops_testing

#endif  // LOOM_KERNELS_CUDA_KERNEL_TEST_UTIL_H_
