// Numerics of the fused kernels on the device, on top of device_types.h
// (compute_t, Load/Store, Vec): correctly rounded arithmetic that nvcc must
// not fuse, and 16-byte vector loads and stores. Included by .cu files after
// kernels/cuda/device/compat.h.
//
//   using C = compute_t<T>;                  // float for bf16/f16, else T
//   const Vec<T, 8> p = LoadPack<8>(x + i);  // one 16-byte load
//   const C y = MulRn(Load(p.v[0]), w);      // never contracted into an FMA
//   out[i] = Store<T>(y);                    // round to nearest even
//
// Why the *Rn helpers: nvcc contracts a * b + c into one FMA by default, while
// the CPU kernels (built with -ffp-contract=off) round every product. Writing
// the rounding explicitly makes the GPU, the emulator and the CPU compute the
// same formula; only library functions (expf, sinf, ...) may differ in the
// last bits between the GPU and the host.
#ifndef LOOM_KERNELS_CUDA_DEVICE_NUMERIC_H_
#define LOOM_KERNELS_CUDA_DEVICE_NUMERIC_H_

#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_types.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

// v rounded to T and back: what storing an intermediate in T does.
template <typename T>
__device__ __forceinline__ compute_t<T> RoundTo(compute_t<T> v) {
  return Load(Store<T>(v));
}

// ---- Correctly rounded arithmetic (one rounding per operation, no FMA contraction).
#if defined(LOOM_CUDA_EMULATION)
// g++ builds with -ffp-contract=off (ISO C++ mode), so plain operators round once each.
inline float MulRn(float a, float b) { return __fmul_rn(a, b); }
inline double MulRn(double a, double b) { return __dmul_rn(a, b); }
inline float AddRn(float a, float b) { return __fadd_rn(a, b); }
inline double AddRn(double a, double b) { return __dadd_rn(a, b); }
inline float DivRn(float a, float b) { return a / b; }
inline double DivRn(double a, double b) { return a / b; }
inline float SqrtRn(float a) { return std::sqrt(a); }
inline double SqrtRn(double a) { return std::sqrt(a); }
inline float FmaRn(float a, float b, float c) { return std::fma(a, b, c); }
inline double FmaRn(double a, double b, double c) { return std::fma(a, b, c); }
#else
__device__ __forceinline__ float MulRn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double MulRn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float AddRn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double AddRn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float DivRn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double DivRn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float SqrtRn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double SqrtRn(double a) { return __dsqrt_rn(a); }
__device__ __forceinline__ float FmaRn(float a, float b, float c) { return __fmaf_rn(a, b, c); }
__device__ __forceinline__ double FmaRn(double a, double b, double c) { return __fma_rn(a, b, c); }
#endif
__device__ __forceinline__ float SubRn(float a, float b) { return AddRn(a, -b); }
__device__ __forceinline__ double SubRn(double a, double b) { return AddRn(a, -b); }

// ---- Vector access: N elements of T in one naturally aligned load or store
// (16 bytes for the vectorized paths: 8 x bf16, 4 x f32, 2 x f64).
namespace numeric_internal {
template <int kBytes>
struct Word;
template <>
struct Word<2> {
  using type = uint16_t;
};
template <>
struct Word<4> {
  using type = uint32_t;
};
template <>
struct Word<8> {
  using type = uint2;
};
template <>
struct Word<16> {
  using type = uint4;
};
template <>
struct Word<32> {  // 4 x f64: two 16-byte accesses
  struct type {
    uint4 lo, hi;
  };
};
}  // namespace numeric_internal

// p must be aligned to sizeof(T) * N.
template <int N, typename T>
__device__ __forceinline__ Vec<T, N> LoadPack(const T* p) {
  using W = typename numeric_internal::Word<sizeof(T) * N>::type;
  const W w = *reinterpret_cast<const W*>(p);
  Vec<T, N> out;
  memcpy(&out, &w, sizeof(out));
  return out;
}

template <int N, typename T>
__device__ __forceinline__ void StorePack(T* p, const Vec<T, N>& pack) {
  using W = typename numeric_internal::Word<sizeof(T) * N>::type;
  W w;
  memcpy(&w, &pack, sizeof(w));
  *reinterpret_cast<W*>(p) = w;
}

// True when `p` is aligned for Vec<T, N> accesses.
template <typename T>
inline bool IsAligned(const void* p, int n) {
  return reinterpret_cast<uintptr_t>(p) % (sizeof(T) * size_t(n)) == 0;
}

// ---- Host-side dtype dispatch of launchers: fn(float{}), fn(double{}),
// fn(__nv_bfloat16{}) or fn(__half{}); InvalidArgument for other dtypes.
template <typename Fn>
absl::Status DispatchFloatingDType(DType dtype, const char* what, Fn&& fn) {
  switch (dtype) {
    case DType::kF32:
      return fn(float{});
    case DType::kF64:
      return fn(double{});
    case DType::kBF16:
      return fn(__nv_bfloat16{});
    case DType::kF16:
      return fn(__half{});
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(what, " has dtype ", DTypeName(dtype),
                       "; expected a floating dtype (f32, f64, bf16, f16)"));
  }
}

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_DEVICE_NUMERIC_H_
