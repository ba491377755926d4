#include "kernels/cuda/kernel_test_util.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/half.h"
#include "runtime/philox.h"

namespace loom::ops_testing {

HostBuffer::HostBuffer(DType dtype, int64_t count, int64_t offset_elements)
    : dtype_(dtype), count_(count), offset_(offset_elements) {
  const size_t bytes = size_t(count + offset_elements) * SizeOf(dtype);
  const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  storage_.reset(static_cast<unsigned char*>(std::aligned_alloc(64, rounded)), std::free);
  std::memset(storage_.get(), 0xFF, rounded);
  data_ = storage_.get() + size_t(offset_elements) * SizeOf(dtype);
}

HostBuffer::HostBuffer(const HostBuffer& other)
    : HostBuffer(other.dtype_, other.count_, other.offset_) {
  std::memcpy(data_, other.data_, size_t(count_) * SizeOf(dtype_));
}

HostBuffer& HostBuffer::operator=(const HostBuffer& other) {
  if (this == &other) return *this;
  HostBuffer copy(other);
  dtype_ = copy.dtype_;
  count_ = copy.count_;
  offset_ = copy.offset_;
  storage_ = std::move(copy.storage_);
  data_ = copy.data_;
  return *this;
}

double HostBuffer::Get(int64_t i) const {
  // A bool byte may hold the 0xFF poison, which is no valid bool: read the byte.
  if (dtype_ == DType::kBool) return static_cast<const uint8_t*>(data_)[i] != 0 ? 1.0 : 0.0;
  return DispatchDType(dtype_, [&](auto tag) {
    using T = decltype(tag);
    return ToDouble(static_cast<const T*>(data_)[i]);
  });
}

void HostBuffer::Set(int64_t i, double v) {
  DispatchDType(dtype_, [&](auto tag) {
    using T = decltype(tag);
    static_cast<T*>(data_)[i] = FromDouble<T>(v);
  });
}

void HostBuffer::FillRandom(uint64_t seed, double low, double high) {
  for (int64_t i = 0; i < count_; ++i) {
    Set(i, low + (high - low) * philox::Uniform(seed, uint64_t(i)));
  }
}

std::vector<double> HostBuffer::ToDoubles() const {
  std::vector<double> v(static_cast<size_t>(count_));
  for (int64_t i = 0; i < count_; ++i) v[size_t(i)] = Get(i);
  return v;
}

bool HostBuffer::BitEqual(const HostBuffer& other) const {
  return dtype_ == other.dtype_ && count_ == other.count_ &&
         std::memcmp(data_, other.data_, size_t(count_) * SizeOf(dtype_)) == 0;
}

double RoundTo(DType dtype, double v) {
  return DispatchDType(dtype, [&](auto tag) {
    using T = decltype(tag);
    return ToDouble(FromDouble<T>(v));
  });
}

::testing::AssertionResult Near(double got, double want, double tol) {
  if (std::isnan(want) || std::isnan(got)) {
    if (std::isnan(want) && std::isnan(got)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "got " << got << ", want " << want;
  }
  if (std::isinf(want) || std::isinf(got)) {
    if (got == want) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "got " << got << ", want " << want;
  }
  const double err = std::abs(got - want);
  if (err <= tol * (1.0 + std::abs(want))) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want << " (error " << err
                                       << ", tolerance " << tol << " * (1 + |want|))";
}

::testing::AssertionResult Same(double got, double want) {
  if (got == want || (std::isnan(got) && std::isnan(want))) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want exactly " << want;
}

double Tolerance(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return 1e-12;
    case DType::kF32:
      return 2e-6;
    case DType::kBF16:
      return 1.6e-2;  // 2 ulp of an 8-bit mantissa
    case DType::kF16:
      return 2e-3;  // 2 ulp of an 11-bit mantissa
    default:
      return 0.0;
  }
}

void ForEachSchedule(const std::function<void(const std::string& schedule)>& body, int seeds) {
  for (emu::Policy policy : {emu::Policy::kThreadRandom, emu::Policy::kWarpSerial}) {
    for (int seed = 0; seed < seeds; ++seed) {
      emu::ScopedOptions options({.policy = policy, .seed = uint64_t(seed) * 7919 + 1});
      body(absl::StrCat(emu::PolicyName(policy), " seed ", seed));
    }
  }
}

int64_t OffsetOf(int64_t linear, const std::vector<int64_t>& sizes,
                 const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (int d = int(sizes.size()) - 1; d >= 0; --d) {
    off += (linear % sizes[d]) * strides[d];
    linear /= sizes[d];
  }
  return off;
}

int64_t Span(const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides) {
  int64_t last = 0;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 0) return 0;
    last += (sizes[d] - 1) * strides[d];
  }
  return last + 1;
}

std::vector<int64_t> Contiguous(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> strides(sizes.size());
  int64_t s = 1;
  for (int d = int(sizes.size()) - 1; d >= 0; --d) {
    strides[d] = s;
    s *= sizes[d];
  }
  return strides;
}

int64_t Numel(const std::vector<int64_t>& sizes) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return n;
}

}  // namespace loom::ops_testing
