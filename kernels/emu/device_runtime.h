// What kernel code sees under the emulator: CUDA's keywords, built-in
// variables, barriers, warp functions, atomics and device math, mapped onto
// the fiber scheduler. Included by kernels/cuda/device/compat.h when
// LOOM_CUDA_EMULATION is defined; never include it directly.
//
// Differences from CUDA a kernel author must know (each is deliberate):
// - `__shared__` is an error: use LOOM_SHARED(type, name, count) for small
//   scratch and DynamicShared<T>() for tiles (kernels/cuda/device/shared.h).
//   Under a bare g++ build `__shared__` would silently become a per-thread
//   local, the most dangerous pitfall of compiling CUDA on the host.
// - `__activemask()` is not provided: convergence cannot be emulated.
// - `__expf` and friends are exact here; tests need a tolerance anyway.
#ifndef LOOM_KERNELS_EMU_DEVICE_RUNTIME_H_
#define LOOM_KERNELS_EMU_DEVICE_RUNTIME_H_

// The CUDA headers first: crt/host_defines.h (include-guarded) defines the
// keywords as empty for host compilers; they are redefined below.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <vector_functions.h>
#include <vector_types.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

#include "kernels/emu/emulator.h"

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __forceinline__
#undef __noinline__
#undef __launch_bounds__
#undef __constant__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __constant__ LOOM_EMU_constant_memory_is_not_emulated
#define __shared__ LOOM_EMU_use_LOOM_SHARED_or_DynamicShared_instead_of___shared__
#ifndef warpSize
#define warpSize 32
#endif

namespace loom::emu::device {

using Loc = std::source_location;

const uint3& ThreadIdx();
const uint3& BlockIdx();
const uint3& BlockDim();
const uint3& GridDim();

void SyncThreads(Loc loc);
void SyncWarp(unsigned mask, Loc loc);

enum class ShflKind : uint8_t { kIdx, kUp, kDown, kXor };
uint64_t Shfl(ShflKind kind, unsigned mask, uint64_t bits, int arg, int width, Loc loc);
unsigned Vote(int kind /*0 ballot, 1 any, 2 all*/, unsigned mask, int pred, Loc loc);

// Static shared memory of the current block (see LOOM_SHARED): one slot per
// declaration, fresh (filled with 0xFF) in every block.
struct StaticSharedSlot {
  uint64_t block_serial = 0;
  void* ptr = nullptr;
  void* Get(size_t bytes, size_t align, Loc loc);
};
void* DynamicSharedBase();

}  // namespace loom::emu::device

// ---- Built-in variables.
#define threadIdx (::loom::emu::device::ThreadIdx())
#define blockIdx (::loom::emu::device::BlockIdx())
#define blockDim (::loom::emu::device::BlockDim())
#define gridDim (::loom::emu::device::GridDim())

// ---- Barriers and warp functions. The defaulted source location names the
// call site in diagnostics and tells two barriers apart.
inline void __syncthreads(std::source_location loc = std::source_location::current()) {
  ::loom::emu::device::SyncThreads(loc);
}
inline void __syncwarp(unsigned mask = 0xFFFFFFFFu,
                       std::source_location loc = std::source_location::current()) {
  ::loom::emu::device::SyncWarp(mask, loc);
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

namespace loom::emu::device {
template <typename T>
T ShflT(ShflKind kind, unsigned mask, T var, int arg, int width, Loc loc) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffle of a 1..8 byte value");
  uint64_t bits = 0;
  std::memcpy(&bits, &var, sizeof(T));
  bits = Shfl(kind, mask, bits, arg, width, loc);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}
}  // namespace loom::emu::device

template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32,
              std::source_location loc = std::source_location::current()) {
  return ::loom::emu::device::ShflT(::loom::emu::device::ShflKind::kIdx, mask, var, src_lane, width,
                                    loc);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32,
                 std::source_location loc = std::source_location::current()) {
  return ::loom::emu::device::ShflT(::loom::emu::device::ShflKind::kUp, mask, var, int(delta),
                                    width, loc);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32,
                   std::source_location loc = std::source_location::current()) {
  return ::loom::emu::device::ShflT(::loom::emu::device::ShflKind::kDown, mask, var, int(delta),
                                    width, loc);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32,
                  std::source_location loc = std::source_location::current()) {
  return ::loom::emu::device::ShflT(::loom::emu::device::ShflKind::kXor, mask, var, lane_mask,
                                    width, loc);
}
inline unsigned __ballot_sync(unsigned mask, int pred,
                              std::source_location loc = std::source_location::current()) {
  return ::loom::emu::device::Vote(0, mask, pred, loc);
}
inline int __any_sync(unsigned mask, int pred,
                      std::source_location loc = std::source_location::current()) {
  return int(::loom::emu::device::Vote(1, mask, pred, loc));
}
inline int __all_sync(unsigned mask, int pred,
                      std::source_location loc = std::source_location::current()) {
  return int(::loom::emu::device::Vote(2, mask, pred, loc));
}

// ---- Atomics (real atomic read-modify-writes, so blocks could run in parallel).
template <typename T>
inline T __loom_atomic_add(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_add(v);
}
inline int atomicAdd(int* p, int v) { return __loom_atomic_add(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __loom_atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return __loom_atomic_add(p, v);
}
inline float atomicAdd(float* p, float v) { return __loom_atomic_add(p, v); }
inline double atomicAdd(double* p, double v) { return __loom_atomic_add(p, v); }
inline int atomicMax(int* p, int v) {
  std::atomic_ref<int> a(*p);
  int old = a.load();
  while (old < v && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
inline int atomicMin(int* p, int v) {
  std::atomic_ref<int> a(*p);
  int old = a.load();
  while (old > v && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
inline int atomicCAS(int* p, int compare, int v) {
  std::atomic_ref<int>(*p).compare_exchange_strong(compare, v);
  return compare;
}
inline unsigned atomicCAS(unsigned* p, unsigned compare, unsigned v) {
  std::atomic_ref<unsigned>(*p).compare_exchange_strong(compare, v);
  return compare;
}
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long compare,
                                    unsigned long long v) {
  std::atomic_ref<unsigned long long>(*p).compare_exchange_strong(compare, v);
  return compare;
}
inline int atomicExch(int* p, int v) { return std::atomic_ref<int>(*p).exchange(v); }
inline unsigned atomicExch(unsigned* p, unsigned v) {
  return std::atomic_ref<unsigned>(*p).exchange(v);
}
inline float atomicExch(float* p, float v) { return std::atomic_ref<float>(*p).exchange(v); }

// ---- Device math and bit casts that host headers lack.
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
// Separately rounded operations: g++ must not contract these into FMAs.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
#pragma GCC pop_options
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline unsigned __float_as_uint(float x) {
  unsigned u;
  std::memcpy(&u, &x, 4);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
inline int __float_as_int(float x) { return int(__float_as_uint(x)); }
inline float __int_as_float(int i) { return __uint_as_float(unsigned(i)); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}
inline int max(int a, int b) { return a > b ? a : b; }
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline double max(double a, double b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline float min(float a, float b) { return std::fmin(a, b); }

#endif  // LOOM_KERNELS_EMU_DEVICE_RUNTIME_H_
