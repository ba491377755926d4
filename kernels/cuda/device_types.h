// Element types as CUDA kernels see them, shared by the memory-bound kernels
// (elementwise, reduce, softmax, cross_entropy, embedding).
//
//   DispatchDeviceType(dtype, [&](auto tag) {
//     using T = decltype(tag);                 // float, double, bf16, f16, int32_t, int64_t, bool
//     return Launch<&Kernel<T>>(config, static_cast<const T*>(x), ...);
//   });
//   // in a kernel:
//   const compute_t<T> v = Load(x[i]);        // float for 16-bit types
//   out[i] = Store<T>(v * 2);                 // round to nearest even
//
// The conversions follow runtime/dtype.h exactly (Load, Store, FromDouble and
// the cast rule of Backend::Copy), so a kernel rounds like the CPU backend.
// Include after kernels/cuda/device/compat.h.
#ifndef LOOM_KERNELS_CUDA_DEVICE_TYPES_H_
#define LOOM_KERNELS_CUDA_DEVICE_TYPES_H_

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kernels/cuda/device/compat.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

using bf16 = __nv_bfloat16;
using f16 = __half;

// ---- DType <-> device type.
template <typename T>
inline constexpr bool kIsHalfType = std::is_same_v<T, bf16> || std::is_same_v<T, f16>;
template <typename T>
inline constexpr bool kIsFloatType =
    kIsHalfType<T> || std::is_same_v<T, float> || std::is_same_v<T, double>;

// Calls fn(T{}) with the device type of `dtype`. Host code only.
template <typename Fn>
decltype(auto) DispatchDeviceType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kF32:
      return fn(float{});
    case DType::kF64:
      return fn(double{});
    case DType::kBF16:
      return fn(bf16{});
    case DType::kF16:
      return fn(f16{});
    case DType::kI32:
      return fn(int32_t{});
    case DType::kI64:
      return fn(int64_t{});
    case DType::kBool:
      return fn(bool{});
  }
  __builtin_unreachable();
}

// Same over the floating types; the caller has checked IsFloating(dtype).
template <typename Fn>
decltype(auto) DispatchDeviceFloat(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kF64:
      return fn(double{});
    case DType::kBF16:
      return fn(bf16{});
    case DType::kF16:
      return fn(f16{});
    default:
      return fn(float{});
  }
}

// ---- The compute type: float for 16-bit floats, else the type itself.
template <typename T>
struct ComputeOf {
  using type = T;
};
template <>
struct ComputeOf<bf16> {
  using type = float;
};
template <>
struct ComputeOf<f16> {
  using type = float;
};
template <typename T>
using compute_t = typename ComputeOf<T>::type;

// The type of per-row statistics (lse, losses): f64 for f64 inputs, else f32.
template <typename T>
using stat_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__device__ __forceinline__ compute_t<T> Load(T v) {
  if constexpr (std::is_same_v<T, bf16>) {
    return __bfloat162float(v);
  } else if constexpr (std::is_same_v<T, f16>) {
    return __half2float(v);
  } else {
    return v;
  }
}

// Rounds to nearest even for 16-bit types (NaN stays NaN), as runtime/half.h.
template <typename T>
__device__ __forceinline__ T Store(compute_t<T> v) {
  if constexpr (std::is_same_v<T, bf16>) {
    return __float2bfloat16_rn(v);
  } else if constexpr (std::is_same_v<T, f16>) {
    return __float2half_rn(v);
  } else {
    return v;
  }
}

// The cast of Backend::Copy: Store<O>(compute_t<O>(Load(s))). f64 -> 16-bit
// therefore rounds through f32, as the CPU does.
template <typename O, typename S>
__device__ __forceinline__ O Convert(S s) {
  return Store<O>(static_cast<compute_t<O>>(Load(s)));
}

// FromDouble<T> of runtime/dtype.h: 16-bit floats round through float.
template <typename T>
__host__ __device__ __forceinline__ T FromDoubleOnDevice(double v) {
  if constexpr (std::is_same_v<T, bf16>) {
    return __float2bfloat16_rn(static_cast<float>(v));
  } else if constexpr (std::is_same_v<T, f16>) {
    return __float2half_rn(static_cast<float>(v));
  } else {
    return static_cast<T>(v);
  }
}

template <typename T>
__device__ __forceinline__ double ToDoubleOnDevice(T v) {
  return static_cast<double>(Load(v));
}

// ---- Math in the compute type: the full-precision library functions (never
// the __expf-style approximations), so results track the CPU's libm closely.
__device__ __forceinline__ float Exp(float x) { return expf(x); }
__device__ __forceinline__ double Exp(double x) { return exp(x); }
__device__ __forceinline__ float Log(float x) { return logf(x); }
__device__ __forceinline__ double Log(double x) { return log(x); }
__device__ __forceinline__ float Sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double Sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float Tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double Tanh(double x) { return tanh(x); }
__device__ __forceinline__ float Sin(float x) { return sinf(x); }
__device__ __forceinline__ double Sin(double x) { return sin(x); }
__device__ __forceinline__ float Cos(float x) { return cosf(x); }
__device__ __forceinline__ double Cos(double x) { return cos(x); }
__device__ __forceinline__ float Abs(float x) { return fabsf(x); }
__device__ __forceinline__ double Abs(double x) { return fabs(x); }
__device__ __forceinline__ float Pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double Pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ bool IsNan(float x) { return x != x; }
__device__ __forceinline__ bool IsNan(double x) { return x != x; }

template <typename C>
__device__ __forceinline__ C Infinity() {
  return std::numeric_limits<C>::infinity();
}

// ---- 16-byte vector loads and stores: `N` elements of T as one access. The
// pointer must be aligned to sizeof(Vec<T, N>).
template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

// Elements per 16-byte access for the widest of the types Ts.
template <typename... Ts>
inline constexpr int kVecWidth = int(16 / std::max({sizeof(Ts)...}));

// True when every pointer is aligned for a `bytes`-wide access. Host code.
template <typename... Ps>
bool AllAligned(size_t bytes, const Ps*... ptrs) {
  return ((reinterpret_cast<uintptr_t>(ptrs) % bytes == 0) && ...);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_DEVICE_TYPES_H_
