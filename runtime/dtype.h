// Element types of tensors and the compile-time mapping to C++ types.
#ifndef LOOM_RUNTIME_DTYPE_H_
#define LOOM_RUNTIME_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "runtime/half.h"

namespace loom {

enum class DType : uint8_t { kF32, kF64, kBF16, kF16, kI32, kI64, kBool };

inline constexpr DType kAllDTypes[] = {DType::kF32, DType::kF64, DType::kBF16, DType::kF16,
                                       DType::kI32, DType::kI64, DType::kBool};

size_t SizeOf(DType dtype);
// Short names used in logs, goldens and safetensors: "f32", "bf16", ...
absl::string_view DTypeName(DType dtype);
absl::StatusOr<DType> DTypeFromName(absl::string_view name);
bool IsFloating(DType dtype);

template <typename T>
struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::kF32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::kF64; };
template <> struct DTypeOf<BFloat16> { static constexpr DType value = DType::kBF16; };
template <> struct DTypeOf<Float16> { static constexpr DType value = DType::kF16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::kI32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::kI64; };
template <> struct DTypeOf<bool> { static constexpr DType value = DType::kBool; };

// Calls fn(T{}) with T the C++ type of `dtype`:
//   DispatchDType(t.dtype(), [&](auto tag) { using T = decltype(tag); ... });
template <typename Fn>
decltype(auto) DispatchDType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kF32: return fn(float{});
    case DType::kF64: return fn(double{});
    case DType::kBF16: return fn(BFloat16{});
    case DType::kF16: return fn(Float16{});
    case DType::kI32: return fn(int32_t{});
    case DType::kI64: return fn(int64_t{});
    case DType::kBool: return fn(bool{});
  }
  __builtin_unreachable();
}

// Same, for the floating types only (f32, f64, bf16, f16); others abort.
template <typename Fn>
decltype(auto) DispatchFloating(DType dtype, const char* op, Fn&& fn);

// Same, for the arithmetic types (all but bool).
template <typename Fn>
decltype(auto) DispatchArithmetic(DType dtype, const char* op, Fn&& fn);

// Conversions between element types and double, used by generic kernels.
template <typename T>
inline double ToDouble(T v) {
  return static_cast<double>(v);
}
template <> inline double ToDouble(BFloat16 v) { return static_cast<float>(v); }
template <> inline double ToDouble(Float16 v) { return static_cast<float>(v); }

template <typename T>
inline T FromDouble(double v) {
  return static_cast<T>(v);
}
template <> inline BFloat16 FromDouble(double v) { return BFloat16(static_cast<float>(v)); }
template <> inline Float16 FromDouble(double v) { return Float16(static_cast<float>(v)); }

// The type arithmetic is done in: float for 16-bit floats, else the type itself.
template <typename T> struct ComputeType { using type = T; };
template <> struct ComputeType<BFloat16> { using type = float; };
template <> struct ComputeType<Float16> { using type = float; };
template <typename T> using compute_t = typename ComputeType<T>::type;

template <typename T>
inline compute_t<T> Load(T v) {
  return static_cast<compute_t<T>>(v);
}
template <typename T>
inline T Store(compute_t<T> v) {
  return static_cast<T>(v);
}
template <> inline BFloat16 Store<BFloat16>(float v) { return BFloat16(v); }
template <> inline Float16 Store<Float16>(float v) { return Float16(v); }

}  // namespace loom

#include "runtime/status.h"

namespace loom {
template <typename Fn>
decltype(auto) DispatchFloating(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::kF32: return fn(float{});
    case DType::kF64: return fn(double{});
    case DType::kBF16: return fn(BFloat16{});
    case DType::kF16: return fn(Float16{});
    default:
      LOOM_CHECK(false, "%s: expected a floating dtype (f32, f64, bf16, f16), got %s", op,
                 std::string(DTypeName(dtype)));
  }
  __builtin_unreachable();
}
template <typename Fn>
decltype(auto) DispatchArithmetic(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::kF32: return fn(float{});
    case DType::kF64: return fn(double{});
    case DType::kBF16: return fn(BFloat16{});
    case DType::kF16: return fn(Float16{});
    case DType::kI32: return fn(int32_t{});
    case DType::kI64: return fn(int64_t{});
    default:
      LOOM_CHECK(false, "%s: bool tensors have no arithmetic", op);
  }
  __builtin_unreachable();
}
}  // namespace loom

#endif  // LOOM_RUNTIME_DTYPE_H_
