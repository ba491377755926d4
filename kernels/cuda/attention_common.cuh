// Internal to the attention kernels: the device-side problem, sequence
// bounds (batched or varlen), tile loads and the fragment helpers shared by
// the forward (attention_forward.cu) and backward (attention_backward.cu).
//
// Notation: Br query rows and Bc key rows per tile, E the head dim; S = Q K^T
// scaled, P = softmax(S), a warp owns 16 rows of whatever it computes. The
// mma fragment layouts are those of kernels/cuda/device/ptx.h.
#ifndef LOOM_KERNELS_CUDA_ATTENTION_COMMON_CUH_
#define LOOM_KERNELS_CUDA_ATTENTION_COMMON_CUH_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/device/compat.h"

namespace loom::LOOM_CUDA_NAMESPACE::attn {

inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;

// Everything a kernel needs, by value (pointers typed by the kernel).
struct DeviceProblem {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  void* lse;  // [B, H, T]: f32, f64 for f64 inputs
  const void* gout;
  void* gq;
  void* gk;
  void* gv;
  float* dq_accum;  // [B, T, H, E] f32, backward only
  void* dsum;       // [B, H, T]: rowsum(dO * O) in the accumulator type, backward only
  BthStrides qs, ks, vs, os, gos, gqs, gks, gvs;
  int64_t seqlen_q, seqlen_k;  // per batch row (the totals when varlen)
  int heads, kv_heads;
  const int32_t* cu_q;
  const int32_t* cu_k;
  double scale;      // softmax scale (double so that f64 inputs keep full precision)
  float scale_log2;  // scale * log2(e), for the exp2 of the tensor-core kernels
};

// One sequence of the problem: its token range in the batch row `batch`.
struct Seq {
  int64_t batch, q_begin, q_len, k_begin, k_len;
};

__device__ __forceinline__ Seq ResolveSeq(const DeviceProblem& p, int z) {
  if (p.cu_q != nullptr) {
    const int64_t qb = p.cu_q[z], kb = p.cu_k[z];
    return {0, qb, p.cu_q[z + 1] - qb, kb, p.cu_k[z + 1] - kb};
  }
  return {z, 0, p.seqlen_q, 0, p.seqlen_k};
}

// Keys a query may see: j < k_len, and under causal masking (bottom-right
// aligned) j <= i + k_len - q_len.
__device__ __forceinline__ bool Visible(bool causal, const Seq& s, int64_t i, int64_t j) {
  return j < s.k_len && (!causal || j <= i + s.k_len - s.q_len);
}

template <typename T>
__device__ __forceinline__ const T* HeadBase(const void* base, const BthStrides& st, int64_t b,
                                             int64_t token, int64_t head) {
  return static_cast<const T*>(base) + b * st.batch + token * st.token + head * st.head;
}
template <typename T>
__device__ __forceinline__ T* HeadBaseMut(void* base, const BthStrides& st, int64_t b,
                                          int64_t token, int64_t head) {
  return static_cast<T*>(base) + b * st.batch + token * st.token + head * st.head;
}

// Copies rows [row0, row0 + kRows) of a [tokens][E] head (token stride
// `stride`) into smem [kRows][kLd], zero-filling rows at or past `rows`.
template <int kRows, int kE, int kLd, int kThreads, typename T>
__device__ __forceinline__ void LoadRows(T* smem, const T* base, int64_t stride, int64_t row0,
                                         int64_t rows) {
  constexpr int kChunksPerRow = kE / 8;
  for (int c = threadIdx.x; c < kRows * kChunksPerRow; c += kThreads) {
    const int r = c / kChunksPerRow, col = (c % kChunksPerRow) * 8;
    const bool valid = row0 + r < rows;
    CpAsync16(smem + r * kLd + col, valid ? base + (row0 + r) * stride + col : base,
              valid ? 16 : 0);
  }
}

__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float ToFloat(__half x) { return __half2float(x); }

template <typename T>
__device__ __forceinline__ uint32_t PackPair(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
  }
}

template <typename T>
__device__ __forceinline__ void Mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    Mma16816Bf16(d, a, b, d);
  } else {
    Mma16816F16(d, a, b, d);
  }
}

// Stores a packed pair (PackPair) at dst[0..1]; dst must be 4-byte aligned.
template <typename T>
__device__ __forceinline__ void StorePair(T* dst, uint32_t v) {
  memcpy(static_cast<void*>(dst), &v, 4);
}

// The A fragment of a 16 x 16 slice from the f32 C fragments of its two
// 16 x 8 halves (columns 0-7 in c0, 8-15 in c1), rounded to T: this is how
// P (or dS) feeds the next mma without a trip through shared memory.
template <typename T>
__device__ __forceinline__ void CToA(uint32_t (&a)[4], const float (&c0)[4], const float (&c1)[4]) {
  a[0] = PackPair<T>(c0[0], c0[1]);
  a[1] = PackPair<T>(c0[2], c0[3]);
  a[2] = PackPair<T>(c1[0], c1[1]);
  a[3] = PackPair<T>(c1[2], c1[3]);
}

// acc[n-tile] += A (16 x 16 per k step, kK / 16 steps, from `a`) times the
// B operand stored [n][k] in smem (k contiguous, rows n0.. of `b`, ld kLd):
// ldmatrix x4 yields two n8 tiles at once.
template <typename T, int kN, int kK, int kLd>
__device__ __forceinline__ void MmaBNk(float (&acc)[kN / 8][4], const uint32_t (&a)[kK / 16][4],
                                       const T* b) {
  const int lane = threadIdx.x % 32, q = lane / 8, r8 = lane % 8;
#pragma unroll
  for (int kk = 0; kk < kK / 16; ++kk) {
#pragma unroll
    for (int n = 0; n < kN / 16; ++n) {
      uint32_t r[4];
      LdMatrix<4, false>(r, b + (n * 16 + r8 + 8 * (lane / 16)) * kLd + kk * 16 + 8 * (q % 2));
      const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
      Mma<T>(acc[2 * n], a[kk], b0);
      Mma<T>(acc[2 * n + 1], a[kk], b1);
    }
  }
}

// Same with B stored [k][n] (n contiguous): ldmatrix x4.trans.
template <typename T, int kN, int kK, int kLd>
__device__ __forceinline__ void MmaBKn(float (&acc)[kN / 8][4], const uint32_t (&a)[kK / 16][4],
                                       const T* b) {
  const int lane = threadIdx.x % 32, q = lane / 8, r8 = lane % 8;
#pragma unroll
  for (int kk = 0; kk < kK / 16; ++kk) {
#pragma unroll
    for (int n = 0; n < kN / 16; ++n) {
      uint32_t r[4];
      LdMatrix<4, true>(r, b + (kk * 16 + r8 + 8 * (q % 2)) * kLd + n * 16 + 8 * (lane / 16));
      const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
      Mma<T>(acc[2 * n], a[kk], b0);
      Mma<T>(acc[2 * n + 1], a[kk], b1);
    }
  }
}

// acc[n-tile] += A B with A the 16 rows at `a` of a [m][k] smem tile (ld
// kLdA, fragments loaded one k step at a time to save registers) and B stored
// [n][k] as in MmaBNk.
template <typename T, int kN, int kK, int kLdA, int kLdB>
__device__ __forceinline__ void MmaSmemABNk(float (&acc)[kN / 8][4], const T* a, const T* b) {
  const int lane = threadIdx.x % 32, q = lane / 8, r8 = lane % 8;
#pragma unroll
  for (int kk = 0; kk < kK / 16; ++kk) {
    uint32_t af[4];
    LdMatrix<4, false>(af, a + (lane % 16) * kLdA + kk * 16 + 8 * (lane / 16));
#pragma unroll
    for (int n = 0; n < kN / 16; ++n) {
      uint32_t r[4];
      LdMatrix<4, false>(r, b + (n * 16 + r8 + 8 * (lane / 16)) * kLdB + kk * 16 + 8 * (q % 2));
      const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
      Mma<T>(acc[2 * n], af, b0);
      Mma<T>(acc[2 * n + 1], af, b1);
    }
  }
}

// A fragments of 16 rows (m0..) of a [m][k] smem tile (k contiguous), all kK / 16 k steps.
template <int kK, int kLd, typename T>
__device__ __forceinline__ void LoadA(uint32_t (&a)[kK / 16][4], const T* smem, int m0) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int kk = 0; kk < kK / 16; ++kk) {
    LdMatrix<4, false>(a[kk], smem + (m0 + lane % 16) * kLd + kk * 16 + 8 * (lane / 16));
  }
}

// A fragments of 16 rows (m0..) of the transpose of a [k][m] smem tile.
template <int kK, int kLd, typename T>
__device__ __forceinline__ void LoadATrans(uint32_t (&a)[kK / 16][4], const T* smem, int m0) {
  const int lane = threadIdx.x % 32, q = lane / 8, r8 = lane % 8;
#pragma unroll
  for (int kk = 0; kk < kK / 16; ++kk) {
    LdMatrix<4, true>(a[kk], smem + (kk * 16 + 8 * (q >> 1) + r8) * kLd + m0 + 8 * (q & 1));
  }
}

template <int kN>
__device__ __forceinline__ void Zero(float (&acc)[kN][4]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[i][e] = 0.0f;
  }
}

// Max and sum over the four lanes of a quad (the threads that share a row of
// a C fragment).
__device__ __forceinline__ float QuadMax(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xFFFFFFFFu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xFFFFFFFFu, x, 2));
}
__device__ __forceinline__ float QuadSum(float x) {
  x += __shfl_xor_sync(0xFFFFFFFFu, x, 1);
  return x + __shfl_xor_sync(0xFFFFFFFFu, x, 2);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE::attn

#endif  // LOOM_KERNELS_CUDA_ATTENTION_COMMON_CUH_
