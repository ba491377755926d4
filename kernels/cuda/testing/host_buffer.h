// Host memory for the emulated kernel tests: the emulated kernels read and
// write host pointers directly, so a test allocates its operands here, fills
// them, launches, and reads the results back as doubles.
//
// A HostBuffer holds `count` elements of one dtype, `offset` elements past a
// 64-byte boundary (offset 0: every vector path is allowed; offset 1: none
// is). It starts filled with 0xFF bytes, which are NaN in every floating
// dtype, so an output the kernel forgot to write shows up as NaN, and the
// bytes around the elements stay 0xFF unless something writes out of bounds.
//
//   HostBuffer x(DType::kBF16, n), out(DType::kBF16, n, /*offset=*/1);
//   x.FillRandom(/*seed=*/1, -2.0, 2.0);  // rounded to bf16 as the runtime rounds
//   ASSERT_TRUE(LaunchUnary(op, {n}, {x.data(), ...}, {out.data(), ...}, nullptr).ok());
//   EXPECT_TRUE(Near(out.Get(i), RoundTo(DType::kBF16, want[i]), Tolerance(DType::kBF16)));
//   EXPECT_TRUE(out.PaddingIntact());
//
// Typed tests that keep std::vector<T> draw the same numbers with
// RandomValues<T>(n, seed, low, high).
#ifndef LOOM_KERNELS_CUDA_TESTING_HOST_BUFFER_H_
#define LOOM_KERNELS_CUDA_TESTING_HOST_BUFFER_H_

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "runtime/dtype.h"
#include "runtime/status.h"

namespace loom::kernel_testing {

class HostBuffer {
 public:
  HostBuffer(DType dtype, int64_t count, int64_t offset = 0);
  // Copies every byte of the allocation (the padding too).
  HostBuffer(const HostBuffer& other);
  HostBuffer& operator=(const HostBuffer& other);
  HostBuffer(HostBuffer&&) = default;
  HostBuffer& operator=(HostBuffer&&) = default;

  DType dtype() const { return dtype_; }
  int64_t count() const { return count_; }
  int64_t offset() const { return offset_; }
  void* data() { return data_; }
  const void* data() const { return data_; }
  // The elements as T, which must be the C++ type of dtype().
  template <typename T>
  T* as() {
    LOOM_CHECK(DTypeOf<T>::value == dtype_, "as<%s>() of a %s buffer", DTypeName(DTypeOf<T>::value),
               DTypeName(dtype_));
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* as() const {
    return const_cast<HostBuffer*>(this)->as<T>();
  }

  // Element i as a double (a bool byte reads as 0 or 1, the 0xFF poison as 1).
  double Get(int64_t i) const;
  // Stores `v` rounded to the dtype as FromDouble<T> (runtime/dtype.h) rounds it.
  void Set(int64_t i, double v);
  // Element i = UniformValue(seed, i, low, high), rounded to the dtype.
  void FillRandom(uint64_t seed, double low = -1.0, double high = 1.0);
  void FillValue(double v);
  std::vector<double> ToDoubles() const;

  // Same dtype, count and element bytes (NaN payloads included).
  bool BitEqual(const HostBuffer& other) const;
  // Every byte of the allocation outside the elements is still 0xFF.
  bool PaddingIntact() const;

 private:
  struct Free {
    void operator()(unsigned char* p) const { std::free(p); }
  };
  size_t AllocatedBytes() const;

  DType dtype_;
  int64_t count_;
  int64_t offset_;
  std::unique_ptr<unsigned char, Free> storage_;
  void* data_;
};

// A uniform draw in [low, high) from 53 random bits of Philox counter i
// under `seed` (the same numbers on every platform and standard library).
double UniformValue(uint64_t seed, int64_t i, double low, double high);

// n values UniformValue(seed, i, low, high) rounded to T: the numbers
// HostBuffer::FillRandom stores.
template <typename T>
std::vector<T> RandomValues(int64_t n, uint64_t seed, double low = -1.0, double high = 1.0) {
  std::vector<T> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = FromDouble<T>(UniformValue(seed, i, low, high));
  return out;
}

// `v` rounded to `dtype` as HostBuffer::Set stores it.
double RoundTo(DType dtype, double v);

// The floating dtypes, for loops in tests (runtime/dtype.h has kAllDTypes).
inline constexpr DType kFloatDTypes[] = {DType::kF32, DType::kF64, DType::kBF16, DType::kF16};

}  // namespace loom::kernel_testing

#endif  // LOOM_KERNELS_CUDA_TESTING_HOST_BUFFER_H_
