// Internal: the tensor-core GEMM kernel, included by gemm_tc_bf16.cu and
// gemm_tc_f16.cu (one file per input type, so nvcc compiles them in parallel).
//
// Each block computes a BM x BN tile of out; its warps split the tile into
// WM x WN warp tiles of m16n8k16 mma.sync operations. K advances in BK-wide
// steps through a kStages-deep ring of shared-memory stages filled by
// cp.async, so the copies of the next stages overlap the math of this one:
//
//   prologue: issue stages 0 .. S-2
//   for each k tile t:
//     wait until tile t has landed (cp.async.wait_group S-2), __syncthreads
//     issue tile t + S - 1 into the stage tile t - 1 used (free: every warp
//       passed the barrier above, so none still reads it)
//     ldmatrix A and B fragments of tile t, mma into the accumulators
//
// Shared-memory tiles keep the global layout (rows padded by 16 bytes so that
// the eight 16-byte rows of each ldmatrix hit distinct banks), and ldmatrix's
// .trans variant turns a transposed operand into the fragment mma expects, so
// all four transpose combinations use one kernel body. Out-of-range rows and
// columns are zero-filled by cp.async's src-size, so any M, N, K works;
// operands whose rows are not 16-byte aligned take the same path with plain
// loads instead of cp.async.
#ifndef LOOM_KERNELS_CUDA_GEMM_TENSOR_CORE_CUH_
#define LOOM_KERNELS_CUDA_GEMM_TENSOR_CORE_CUH_

#include <cstring>
#include <type_traits>

#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/gemm_internal.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE::gemm_internal::tc {

template <int kBM_, int kBN_, int kBK_, int kWarpsM_, int kWarpsN_, int kStages_>
struct TileConfig {
  static constexpr int kBM = kBM_, kBN = kBN_, kBK = kBK_, kStages = kStages_;
  static constexpr int kWarpsM = kWarpsM_, kWarpsN = kWarpsN_;
  static constexpr int kThreads = kWarpsM * kWarpsN * 32;
  static constexpr int kWM = kBM / kWarpsM, kWN = kBN / kWarpsN;  // warp tile
  static constexpr int kMmaM = kWM / 16, kMmaN = kWN / 8;         // mma tiles per warp
  static constexpr int kPad = 8;  // elements (16 bytes) of row padding
  static_assert(kWM % 16 == 0 && kWN % 16 == 0 && kBK % 16 == 0, "tile shapes");
};
using Tile128 = TileConfig<128, 128, 32, 2, 4, 3>;
using Tile64 = TileConfig<64, 64, 32, 2, 2, 3>;

// One stored operand tile in shared memory: kRows x kCols elements of the
// global layout (kCols contiguous), each row padded.
template <int kRows, int kCols, int kPad>
struct SmemTile {
  static constexpr int kLd = kCols + kPad;
  static constexpr int kElems = kRows * kLd;
};

template <typename T, bool kTransA, bool kTransB, typename Cfg>
struct Layout {
  // A is [M][K] in memory unless transposed ([K][M]); B is [K][N] unless transposed ([N][K]).
  using A = SmemTile<kTransA ? Cfg::kBK : Cfg::kBM, kTransA ? Cfg::kBM : Cfg::kBK, Cfg::kPad>;
  using B = SmemTile<kTransB ? Cfg::kBN : Cfg::kBK, kTransB ? Cfg::kBK : Cfg::kBN, Cfg::kPad>;
  static constexpr int kStageElems = A::kElems + B::kElems;
  static constexpr size_t kSmemBytes = size_t(kStageElems) * Cfg::kStages * sizeof(T);
};

template <typename T, typename Out>
struct KernelArgs {
  const T* a;
  const T* b;
  Out* out;
  int64_t m, n, k;
  int64_t lda, ldb, ldo;
  int64_t batch_stride_a, batch_stride_b, batch_stride_out;
  float alpha, beta;
};

__device__ __forceinline__ float ToFloat(float x) { return x; }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float ToFloat(__half x) { return __half2float(x); }
template <typename Out>
__device__ __forceinline__ Out FromFloat(float x);
template <>
__device__ __forceinline__ float FromFloat<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ __half FromFloat<__half>(float x) {
  return __float2half_rn(x);
}

// o[0..1] = (v0, v1) + beta * o[0..1], as one aligned vector store.
__device__ __forceinline__ void StorePair(float* o, float v0, float v1, float beta) {
  float2 r = make_float2(v0, v1);
  if (beta != 0.0f) {
    const float2 old = *reinterpret_cast<const float2*>(o);
    r.x += beta * old.x;
    r.y += beta * old.y;
  }
  *reinterpret_cast<float2*>(o) = r;
}
template <typename Out>
__device__ __forceinline__ void StorePair(Out* o, float v0, float v1, float beta) {
  if (beta != 0.0f) {
    v0 += beta * ToFloat(o[0]);
    v1 += beta * ToFloat(o[1]);
  }
  Out r[2] = {FromFloat<Out>(v0), FromFloat<Out>(v1)};
  memcpy(static_cast<void*>(o), r, 2 * sizeof(Out));
}

template <typename T>
__device__ __forceinline__ void Mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    Mma16816Bf16(d, a, b, d);
  } else {
    Mma16816F16(d, a, b, d);
  }
}

// Copies the stored tile at (row0, col0) of a [rows, cols] matrix with row
// stride ld into `smem` (kRows x kCols, ld Tile::kLd), zero-filling whatever
// lies outside the matrix. 16-byte chunks: cp.async when kAsync (rows and base
// 16-byte aligned), plain loads otherwise.
template <typename Tile, int kRows, int kCols, int kThreads, bool kAsync, typename T>
__device__ __forceinline__ void LoadTile(T* smem, const T* g, int64_t ld, int64_t rows,
                                         int64_t cols, int64_t row0, int64_t col0) {
  constexpr int kChunksPerRow = kCols / 8;
  constexpr int kChunks = kRows * kChunksPerRow;
  for (int c = threadIdx.x; c < kChunks; c += kThreads) {
    const int r = c / kChunksPerRow, c8 = (c % kChunksPerRow) * 8;
    const int64_t gr = row0 + r, gc = col0 + c8;
    int64_t valid = gr < rows ? cols - gc : 0;
    valid = valid < 0 ? 0 : (valid > 8 ? 8 : valid);
    T* dst = smem + r * Tile::kLd + c8;
    const T* src = valid > 0 ? g + gr * ld + gc : g;
    if constexpr (kAsync) {
      CpAsync16(dst, src, int(valid * sizeof(T)));
    } else {
      for (int e = 0; e < 8; ++e) dst[e] = e < valid ? src[e] : FromFloat<T>(0.0f);
    }
  }
}

template <typename T, typename Out, bool kTransA, bool kTransB, bool kAsync, typename Cfg>
__global__ void __launch_bounds__(Cfg::kThreads, 1) TensorCoreGemmKernel(KernelArgs<T, Out> p) {
  using L = Layout<T, kTransA, kTransB, Cfg>;
  T* smem = DynamicShared<T>();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int warp_m = warp / Cfg::kWarpsN, warp_n = warp % Cfg::kWarpsN;
  const int64_t bm = int64_t(blockIdx.y) * Cfg::kBM, bn = int64_t(blockIdx.x) * Cfg::kBN;
  const T* a = p.a + int64_t(blockIdx.z) * p.batch_stride_a;
  const T* b = p.b + int64_t(blockIdx.z) * p.batch_stride_b;
  Out* out = p.out + int64_t(blockIdx.z) * p.batch_stride_out;
  const int k_tiles = int((p.k + Cfg::kBK - 1) / Cfg::kBK);

  auto stage_a = [&](int s) { return smem + s * L::kStageElems; };
  auto stage_b = [&](int s) { return smem + s * L::kStageElems + L::A::kElems; };
  auto load = [&](int kt) {
    const int s = kt % Cfg::kStages;
    const int64_t k0 = int64_t(kt) * Cfg::kBK;
    if constexpr (kTransA) {
      LoadTile<typename L::A, Cfg::kBK, Cfg::kBM, Cfg::kThreads, kAsync>(stage_a(s), a, p.lda, p.k,
                                                                         p.m, k0, bm);
    } else {
      LoadTile<typename L::A, Cfg::kBM, Cfg::kBK, Cfg::kThreads, kAsync>(stage_a(s), a, p.lda, p.m,
                                                                         p.k, bm, k0);
    }
    if constexpr (kTransB) {
      LoadTile<typename L::B, Cfg::kBN, Cfg::kBK, Cfg::kThreads, kAsync>(stage_b(s), b, p.ldb, p.n,
                                                                         p.k, bn, k0);
    } else {
      LoadTile<typename L::B, Cfg::kBK, Cfg::kBN, Cfg::kThreads, kAsync>(stage_b(s), b, p.ldb, p.k,
                                                                         p.n, k0, bn);
    }
  };

  float acc[Cfg::kMmaM][Cfg::kMmaN][4];
#pragma unroll
  for (int i = 0; i < Cfg::kMmaM; ++i) {
#pragma unroll
    for (int j = 0; j < Cfg::kMmaN; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    }
  }

#pragma unroll
  for (int s = 0; s < Cfg::kStages - 1; ++s) {
    if (s < k_tiles) load(s);
    CpAsyncCommit();
  }

  // ldmatrix row addresses, relative to the warp tile and k offset kk:
  // A as [m][k] (x4: rows lane % 16, k half lane / 16) or [k][m] (x4.trans:
  // matrix q = lane / 8 covers m half q & 1 and k half q >> 1); B as [k][n]
  // (x4.trans: k row lane % 8 + 8 ((lane / 8) % 2), n half lane / 16) or
  // [n][k] (x4: n row lane % 8 + 8 (lane / 16), k half (lane / 8) % 2).
  const int q = lane / 8, r8 = lane % 8;
  for (int kt = 0; kt < k_tiles; ++kt) {
    CpAsyncWait<Cfg::kStages - 2>();
    __syncthreads();
    if (kt + Cfg::kStages - 1 < k_tiles) load(kt + Cfg::kStages - 1);
    CpAsyncCommit();

    const T* sa = stage_a(kt % Cfg::kStages);
    const T* sb = stage_b(kt % Cfg::kStages);
#pragma unroll
    for (int kk = 0; kk < Cfg::kBK; kk += 16) {
      uint32_t af[Cfg::kMmaM][4];
      uint32_t bf[Cfg::kMmaN][2];
#pragma unroll
      for (int i = 0; i < Cfg::kMmaM; ++i) {
        const int m0 = warp_m * Cfg::kWM + i * 16;
        if constexpr (kTransA) {
          LdMatrix<4, true>(af[i], sa + (kk + 8 * (q >> 1) + r8) * L::A::kLd + m0 + 8 * (q & 1));
        } else {
          LdMatrix<4, false>(af[i], sa + (m0 + lane % 16) * L::A::kLd + kk + 8 * (lane / 16));
        }
      }
#pragma unroll
      for (int j = 0; j < Cfg::kMmaN; j += 2) {
        const int n0 = warp_n * Cfg::kWN + j * 8;
        uint32_t r[4];
        if constexpr (kTransB) {
          LdMatrix<4, false>(r, sb + (n0 + r8 + 8 * (lane / 16)) * L::B::kLd + kk + 8 * (q % 2));
        } else {
          LdMatrix<4, true>(r, sb + (kk + r8 + 8 * (q % 2)) * L::B::kLd + n0 + 8 * (lane / 16));
        }
        bf[j][0] = r[0];
        bf[j][1] = r[1];
        bf[j + 1][0] = r[2];
        bf[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < Cfg::kMmaM; ++i) {
#pragma unroll
        for (int j = 0; j < Cfg::kMmaN; ++j) Mma<T>(acc[i][j], af[i], bf[j]);
      }
    }
  }
  CpAsyncWait<0>();  // only empty groups remain; retire them before exit

  // Epilogue: c0, c1 at (row g, cols 2t, 2t+1), c2, c3 at row g + 8. A pair
  // of adjacent columns goes out as one 8-byte (f32) or 4-byte (16-bit) store
  // when the output allows it (even ldo, aligned base).
  const int g = lane / 4, t = lane % 4;
  const bool paired = p.ldo % 2 == 0 && reinterpret_cast<uintptr_t>(out) % (2 * sizeof(Out)) == 0;
#pragma unroll
  for (int i = 0; i < Cfg::kMmaM; ++i) {
#pragma unroll
    for (int j = 0; j < Cfg::kMmaN; ++j) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int64_t row = bm + warp_m * Cfg::kWM + i * 16 + g + 8 * half;
        const int64_t col = bn + warp_n * Cfg::kWN + j * 8 + 2 * t;
        if (row >= p.m || col >= p.n) continue;
        Out* o = out + row * p.ldo + col;
        float v0 = p.alpha * acc[i][j][2 * half], v1 = p.alpha * acc[i][j][2 * half + 1];
        if (paired && col + 1 < p.n) {
          StorePair(o, v0, v1, p.beta);
        } else {
          if (p.beta != 0.0f) v0 += p.beta * ToFloat(o[0]);
          o[0] = FromFloat<Out>(v0);
          if (col + 1 < p.n) {
            if (p.beta != 0.0f) v1 += p.beta * ToFloat(o[1]);
            o[1] = FromFloat<Out>(v1);
          }
        }
      }
    }
  }
}

inline bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T, typename Out, bool kTransA, bool kTransB, bool kAsync, typename Cfg>
absl::Status Run(const GemmProblem& p, cudaStream_t stream) {
  constexpr auto kKernel = &TensorCoreGemmKernel<T, Out, kTransA, kTransB, kAsync, Cfg>;
  constexpr size_t kSmem = Layout<T, kTransA, kTransB, Cfg>::kSmemBytes;
  LOOM_RETURN_IF_ERROR(SetMaxDynamicSharedMemory<kKernel>(kSmem));
  const KernelArgs<T, Out> args{static_cast<const T*>(p.a),
                                static_cast<const T*>(p.b),
                                static_cast<Out*>(p.out),
                                p.m,
                                p.n,
                                p.k,
                                p.lda,
                                p.ldb,
                                p.ldo,
                                p.batch_stride_a,
                                p.batch_stride_b,
                                p.batch_stride_out,
                                p.alpha,
                                p.beta};
  const LaunchConfig config{
      .grid = dim3(unsigned((p.n + Cfg::kBN - 1) / Cfg::kBN),
                   unsigned((p.m + Cfg::kBM - 1) / Cfg::kBM), unsigned(p.batch)),
      .block = dim3(Cfg::kThreads),
      .dynamic_smem = kSmem,
      .stream = stream};
  return Launch<kKernel>(config, args);
}

template <typename T, typename Out, typename Cfg>
absl::Status DispatchLayout(const GemmProblem& p, cudaStream_t stream) {
  // cp.async needs 16-byte aligned sources: aligned bases, row and batch strides.
  const bool async = Aligned16(p.a) && Aligned16(p.b) && p.lda % 8 == 0 && p.ldb % 8 == 0 &&
                     p.batch_stride_a % 8 == 0 && p.batch_stride_b % 8 == 0;
  const int layout = (p.trans_a ? 1 : 0) | (p.trans_b ? 2 : 0);
  if (!async) {
    // Rare (odd leading dimensions): plain loads, and only the small tile, to
    // keep the number of compiled kernels down.
    switch (layout) {
      case 0:
        return Run<T, Out, false, false, false, Tile64>(p, stream);
      case 1:
        return Run<T, Out, true, false, false, Tile64>(p, stream);
      case 2:
        return Run<T, Out, false, true, false, Tile64>(p, stream);
      default:
        return Run<T, Out, true, true, false, Tile64>(p, stream);
    }
  }
  switch (layout) {
    case 0:
      return Run<T, Out, false, false, true, Cfg>(p, stream);
    case 1:
      return Run<T, Out, true, false, true, Cfg>(p, stream);
    case 2:
      return Run<T, Out, false, true, true, Cfg>(p, stream);
    default:
      return Run<T, Out, true, true, true, Cfg>(p, stream);
  }
}

template <typename T>
absl::Status LaunchForInput(const GemmProblem& p, Tile tile, cudaStream_t stream) {
  const bool f32_out = p.output == DType::kF32;
  if (tile == Tile::k128x128) {
    return f32_out ? DispatchLayout<T, float, Tile128>(p, stream)
                   : DispatchLayout<T, T, Tile128>(p, stream);
  }
  return f32_out ? DispatchLayout<T, float, Tile64>(p, stream)
                 : DispatchLayout<T, T, Tile64>(p, stream);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE::gemm_internal::tc

#endif  // LOOM_KERNELS_CUDA_GEMM_TENSOR_CORE_CUH_
