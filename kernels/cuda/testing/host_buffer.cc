#include "kernels/cuda/testing/host_buffer.h"

#include <algorithm>
#include <cstring>

#include "runtime/philox.h"

namespace loom::kernel_testing {
namespace {

constexpr size_t kAlignment = 64;
constexpr unsigned char kPoison = 0xFF;

}  // namespace

HostBuffer::HostBuffer(DType dtype, int64_t count, int64_t offset)
    : dtype_(dtype), count_(count), offset_(offset) {
  LOOM_CHECK(count >= 0 && offset >= 0, "HostBuffer of %d elements at offset %d", count, offset);
  const size_t bytes = AllocatedBytes();
  storage_.reset(static_cast<unsigned char*>(std::aligned_alloc(kAlignment, bytes)));
  LOOM_CHECK(storage_ != nullptr, "HostBuffer: cannot allocate %d bytes", bytes);
  std::memset(storage_.get(), kPoison, bytes);
  data_ = storage_.get() + size_t(offset) * SizeOf(dtype);
}

HostBuffer::HostBuffer(const HostBuffer& other)
    : HostBuffer(other.dtype_, other.count_, other.offset_) {
  std::memcpy(storage_.get(), other.storage_.get(), AllocatedBytes());
}

HostBuffer& HostBuffer::operator=(const HostBuffer& other) {
  if (this != &other) *this = HostBuffer(other);
  return *this;
}

size_t HostBuffer::AllocatedBytes() const {
  const size_t bytes = size_t(count_ + offset_) * SizeOf(dtype_);
  return (std::max<size_t>(bytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
}

double HostBuffer::Get(int64_t i) const {
  LOOM_CHECK(i >= 0 && i < count_, "HostBuffer::Get(%d) of %d elements", i, count_);
  // The 0xFF poison is no valid bool: read the byte.
  if (dtype_ == DType::kBool) return static_cast<const uint8_t*>(data_)[i] != 0 ? 1.0 : 0.0;
  return DispatchDType(dtype_, [&](auto tag) {
    using T = decltype(tag);
    return ToDouble(static_cast<const T*>(data_)[i]);
  });
}

void HostBuffer::Set(int64_t i, double v) {
  LOOM_CHECK(i >= 0 && i < count_, "HostBuffer::Set(%d) of %d elements", i, count_);
  DispatchDType(dtype_, [&](auto tag) {
    using T = decltype(tag);
    static_cast<T*>(data_)[i] = FromDouble<T>(v);
  });
}

void HostBuffer::FillRandom(uint64_t seed, double low, double high) {
  for (int64_t i = 0; i < count_; ++i) Set(i, UniformValue(seed, i, low, high));
}

void HostBuffer::FillValue(double v) {
  for (int64_t i = 0; i < count_; ++i) Set(i, v);
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

bool HostBuffer::PaddingIntact() const {
  const unsigned char* begin = storage_.get();
  const unsigned char* first = static_cast<const unsigned char*>(data_);
  const unsigned char* last = first + size_t(count_) * SizeOf(dtype_);
  auto poisoned = [](unsigned char b) { return b == kPoison; };
  return std::all_of(begin, first, poisoned) &&
         std::all_of(last, begin + AllocatedBytes(), poisoned);
}

double UniformValue(uint64_t seed, int64_t i, double low, double high) {
  const philox::Block b = philox::Generate(seed, uint64_t(i));
  // 27 + 26 bits, as a double has 53.
  const uint64_t bits = (uint64_t(b.x[0] >> 5) << 26) | uint64_t(b.x[1] >> 6);
  const double u = double(bits) * (1.0 / 9007199254740992.0);  // [0, 1)
  return low + (high - low) * u;
}

double RoundTo(DType dtype, double v) {
  return DispatchDType(dtype, [&](auto tag) {
    using T = decltype(tag);
    return ToDouble(FromDouble<T>(v));
  });
}

}  // namespace loom::kernel_testing
