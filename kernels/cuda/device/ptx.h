// Thin wrappers over the sm_80 tensor-core and async-copy instructions:
// inline PTX under nvcc, the emulator's collectives (kernels/emu/ptx.h) under
// g++. Keep them tiny: under nvcc they are compiled but never run here, so
// each must be reviewed against the PTX ISA (layouts in
// /shared/specs/cuda-emulation.md section 4).
//
// Fragment layouts of mma.m16n8k16 (g = lane / 4, t = lane % 4; 16-bit pairs
// packed low element first):
//   A 16x16 row-major: a[0] = A[g][2t..2t+1]   a[1] = A[g+8][2t..2t+1]
//                      a[2] = A[g][2t+8..+9]   a[3] = A[g+8][2t+8..+9]
//   B 16x8 (k x n):    b[0] = B[2t..2t+1][g]   b[1] = B[2t+8..2t+9][g]
//   C/D 16x8 f32:      c[0..1] = C[g][2t..2t+1]   c[2..3] = C[g+8][2t..2t+1]
#ifndef LOOM_KERNELS_CUDA_DEVICE_PTX_H_
#define LOOM_KERNELS_CUDA_DEVICE_PTX_H_

#include <cstdint>

#if defined(LOOM_CUDA_EMULATION)
#include <source_location>

#include "kernels/emu/ptx.h"
// Under emulation every wrapper takes its call site for diagnostics.
#define LOOM_PTX_LOC , std::source_location loc = std::source_location::current()
#define LOOM_PTX_LOC_FIRST std::source_location loc = std::source_location::current()
#else
#define LOOM_PTX_LOC
#define LOOM_PTX_LOC_FIRST
#endif

// d = a * b + c on bf16 (or f16) inputs with f32 accumulation.
__device__ __forceinline__ void Mma16816Bf16(float (&d)[4], const uint32_t (&a)[4],
                                             const uint32_t (&b)[2],
                                             const float (&c)[4] LOOM_PTX_LOC) {
#if defined(LOOM_CUDA_EMULATION)
  ::loom::emu::device::Mma16816(::loom::emu::device::MmaType::kBF16, d, a, b, c, loc);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#endif
}

__device__ __forceinline__ void Mma16816F16(float (&d)[4], const uint32_t (&a)[4],
                                            const uint32_t (&b)[2],
                                            const float (&c)[4] LOOM_PTX_LOC) {
#if defined(LOOM_CUDA_EMULATION)
  ::loom::emu::device::Mma16816(::loom::emu::device::MmaType::kF16, d, a, b, c, loc);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
        "f"(c[2]), "f"(c[3]));
#endif
}

// ldmatrix.sync.aligned.m8n8.x{N}[.trans].shared.b16: lane 8m + r passes the
// shared-memory address of row r of matrix m (16 contiguous bytes, 16-byte
// aligned); r[m] receives this lane's part of matrix m: without .trans
// M[g][2t..2t+1], with .trans M[2t][g] (low) and M[2t+1][g] (high).
template <int N, bool Trans>
__device__ __forceinline__ void LdMatrix(uint32_t (&r)[N], const void* row LOOM_PTX_LOC) {
  static_assert(N == 1 || N == 2 || N == 4, "ldmatrix loads 1, 2 or 4 matrices");
#if defined(LOOM_CUDA_EMULATION)
  ::loom::emu::device::LdMatrix(N, Trans, r, row, loc);
#else
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  if constexpr (N == 1 && !Trans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0])
                 : "r"(a)
                 : "memory");
  } else if constexpr (N == 1 && Trans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0])
                 : "r"(a)
                 : "memory");
  } else if constexpr (N == 2 && !Trans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(a)
                 : "memory");
  } else if constexpr (N == 2 && Trans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(a)
                 : "memory");
  } else if constexpr (N == 4 && !Trans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a)
                 : "memory");
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a)
                 : "memory");
  }
#endif
}

// cp.async.cg.shared.global [smem], [gmem], 16, src_bytes: an asynchronous
// 16-byte global-to-shared copy (L2 only); bytes past src_bytes are zero, so
// src_bytes = 0 zero-fills a tile's out-of-range rows. Both addresses 16-byte
// aligned. Visible to this thread after CpAsyncWait, to others after a barrier.
__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem,
                                          int src_bytes = 16 LOOM_PTX_LOC) {
#if defined(LOOM_CUDA_EMULATION)
  ::loom::emu::device::CpAsync(smem, gmem, 16, src_bytes, loc);
#else
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes)
               : "memory");
#endif
}

// cp.async.commit_group: this thread's copies issued since the last commit
// become one group (possibly empty, which counts as complete).
__device__ __forceinline__ void CpAsyncCommit() {
#if defined(LOOM_CUDA_EMULATION)
  ::loom::emu::device::CpAsyncCommit();
#else
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// cp.async.wait_group N: waits until at most the N newest groups of this
// thread are pending.
template <int N>
__device__ __forceinline__ void CpAsyncWait(LOOM_PTX_LOC_FIRST) {
#if defined(LOOM_CUDA_EMULATION)
  ::loom::emu::device::CpAsyncWait(N, loc);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

#endif  // LOOM_KERNELS_CUDA_DEVICE_PTX_H_
