#include "collectives/cpu_reduce.h"

#include <algorithm>
#include <cstring>

#include "runtime/status.h"

namespace loom::collectives {
namespace {

template <typename T>
void Binary(T* out, const T* a, const T* b, int64_t n, ReduceOp op) {
  if (op == ReduceOp::kMax) {
    for (int64_t i = 0; i < n; ++i) out[i] = std::max(a[i], b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
  }
}

template <typename Fn>
void DispatchAccumulator(DType acc, Fn&& fn) {
  switch (acc) {
    case DType::kF32:
      return fn(float{});
    case DType::kF64:
      return fn(double{});
    case DType::kI32:
      return fn(int32_t{});
    case DType::kI64:
      return fn(int64_t{});
    default:
      LOOM_CHECK(false, "not an accumulator dtype: %s", std::string(DTypeName(acc)));
  }
}

}  // namespace

DType AccumulatorDType(DType dtype) {
  return dtype == DType::kBF16 || dtype == DType::kF16 ? DType::kF32 : dtype;
}

void ToAccumulatorInto(DType dtype, const void* src, void* dst, int64_t n) {
  if (AccumulatorDType(dtype) == dtype) {
    if (n > 0 && src != dst) std::memcpy(dst, src, size_t(n) * SizeOf(dtype));
    return;
  }
  float* d = static_cast<float*>(dst);
  if (dtype == DType::kBF16) {
    const BFloat16* s = static_cast<const BFloat16*>(src);
    for (int64_t i = 0; i < n; ++i) d[i] = float(s[i]);
  } else {
    const Float16* s = static_cast<const Float16*>(src);
    for (int64_t i = 0; i < n; ++i) d[i] = float(s[i]);
  }
}

std::vector<char> ToAccumulator(DType dtype, const void* src, int64_t n) {
  std::vector<char> out(size_t(n) * SizeOf(AccumulatorDType(dtype)));
  ToAccumulatorInto(dtype, src, out.data(), n);
  return out;
}

void FromAccumulator(DType dtype, const void* acc, void* dst, int64_t n) {
  if (AccumulatorDType(dtype) == dtype) {
    if (n > 0 && acc != dst) std::memcpy(dst, acc, size_t(n) * SizeOf(dtype));
    return;
  }
  const float* s = static_cast<const float*>(acc);
  if (dtype == DType::kBF16) {
    BFloat16* d = static_cast<BFloat16*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = BFloat16(s[i]);
  } else {
    Float16* d = static_cast<Float16*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = Float16(s[i]);
  }
}

void ReduceBinary(DType acc_dtype, void* out, const void* a, const void* b, int64_t n,
                  ReduceOp op) {
  DispatchAccumulator(acc_dtype, [&](auto tag) {
    using T = decltype(tag);
    Binary(static_cast<T*>(out), static_cast<const T*>(a), static_cast<const T*>(b), n, op);
  });
}

void ReduceInto(DType acc_dtype, void* dst, const void* src, int64_t n, ReduceOp op) {
  ReduceBinary(acc_dtype, dst, dst, src, n, op);
}

void DivideInPlace(DType acc_dtype, void* dst, int64_t n, int divisor) {
  if (acc_dtype == DType::kF32) {
    float* d = static_cast<float*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] /= float(divisor);
  } else if (acc_dtype == DType::kF64) {
    double* d = static_cast<double*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] /= double(divisor);
  } else {
    LOOM_CHECK(false, "avg needs a floating dtype, got %s", std::string(DTypeName(acc_dtype)));
  }
}

}  // namespace loom::collectives
