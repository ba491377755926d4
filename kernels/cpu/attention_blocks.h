// Shared SIMD building blocks of the CPU attention kernels
// (attention_forward.cc, attention_backward.cc).
//
// Every block product of the attention is a register-tiled small GEMM on
// GCC/Clang vector types, which lower to the target's SIMD (AVX-512, AVX2,
// ...): SmallGemm, plus a vectorized e^x and the row operations of the online
// softmax and its gradient. Operands are zero-padded to the vector width and
// vector-aligned (see attention_packing.h).
#ifndef LOOM_KERNELS_CPU_ATTENTION_BLOCKS_H_
#define LOOM_KERNELS_CPU_ATTENTION_BLOCKS_H_

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "runtime/status.h"

namespace loom::cpu::attention_internal {

// ---- SIMD building blocks.

// The widest vectors the target has registers for (wider ones would be passed
// in memory, changing the ABI): 64 bytes with AVX-512, 32 with AVX, else 16.
#if defined(__AVX512F__)
inline constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
inline constexpr int kVectorBytes = 32;
#else
inline constexpr int kVectorBytes = 16;
#endif
// GEMM tiles are 4 rows x kTileVectors vectors of accumulators, which must fit
// in the register file with room to spare (32 registers with AVX-512, else 16).
inline constexpr int kTileVectors = kVectorBytes == 64 ? 4 : 2;

template <typename C>
struct Simd;
template <>
struct Simd<float> {
  typedef float V __attribute__((vector_size(kVectorBytes), may_alias));
  typedef int32_t I __attribute__((vector_size(kVectorBytes)));
};
template <>
struct Simd<double> {
  typedef double V __attribute__((vector_size(kVectorBytes), may_alias));
};
template <typename C>
using Vec = typename Simd<C>::V;
template <typename C>
inline constexpr int64_t kWidth = kVectorBytes / int64_t(sizeof(C));

template <typename C>
inline Vec<C> LoadV(const C* p) {
  return *reinterpret_cast<const Vec<C>*>(p);
}
template <typename C>
inline void StoreV(C* p, Vec<C> v) {
  *reinterpret_cast<Vec<C>*>(p) = v;
}
template <typename C>
inline Vec<C> Splat(C x) {
  return Vec<C>{} + x;
}

// e^x, within ~2 ulp; 0 below -87 (so -inf gives 0). Reduction x = n ln2 + r
// with |r| <= ln2 / 2 and a degree-7 Taylor polynomial (truncation < 1e-8),
// evaluated by Estrin's scheme for a short dependency chain.
[[gnu::always_inline]] inline Vec<float> Exp(Vec<float> x) {
  using V = Vec<float>;
  using I = Simd<float>::I;
  const V lo = Splat(-87.0f), hi = Splat(88.0f);
  const V xc = x < lo ? lo : (x > hi ? hi : x);
  const V round = Splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const V n = (xc * 1.44269504f + round) - round;
  V r = xc - n * 0.693359375f;  // ln2 split in two: n * 0.693359375 is exact
  r = r - n * -2.12194440e-4f;
  const V r2 = r * r, r4 = r2 * r2;
  const V p01 = r + 1.0f, p23 = r * (1.0f / 6) + 0.5f;
  const V p45 = r * (1.0f / 120) + 1.0f / 24, p67 = r * (1.0f / 5040) + 1.0f / 720;
  const V p = (p23 * r2 + p01) + (p67 * r2 + p45) * r4;
  const I pow2 = (__builtin_convertvector(n, I) + 127) << 23;
  const V result = p * std::bit_cast<V>(pow2);
  return x < lo ? V{} : result;
}

// f64 is for exactness (gradient checks), not speed: libm per lane.
inline Vec<double> Exp(Vec<double> x) {
  for (int i = 0; i < kWidth<double>; ++i) x[i] = std::exp(x[i]);
  return x;
}

// The lanes of v rotated down by Shift.
template <int Shift, typename V, size_t... I>
inline V RotateLanes(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, ((I + Shift) % sizeof...(I))...);
}

// Sum (or max) of the lanes, as a tree of rotations: a short dependency chain
// in a fixed order.
template <typename C, bool kMax, int Shift = kWidth<C> / 2>
inline C LaneReduce(Vec<C> v) {
  const Vec<C> r = RotateLanes<Shift>(v, std::make_index_sequence<kWidth<C>>{});
  v = kMax ? (v > r ? v : r) : v + r;
  if constexpr (Shift > 1) {
    return LaneReduce<C, kMax, Shift / 2>(v);
  } else {
    return v[0];
  }
}
template <typename C>
inline C LaneSum(Vec<C> v) {
  return LaneReduce<C, false>(v);
}
template <typename C>
inline C LaneMax(Vec<C> v) {
  return LaneReduce<C, true>(v);
}

// A zero-initialized buffer of n values aligned to the vector size.
template <typename C>
class AlignedBuffer {
 public:
  explicit AlignedBuffer(int64_t n) : storage_(size_t(n + kWidth<C>), C(0)) {
    void* p = storage_.data();
    size_t space = storage_.size() * sizeof(C);  // one vector of slack
    data_ = static_cast<C*>(std::align(kVectorBytes, size_t(n) * sizeof(C), p, space));
    LOOM_CHECK(data_ != nullptr, "Attention: cannot align a scratch buffer");
  }
  C* get() const { return data_; }

 private:
  std::vector<C> storage_;
  C* data_;
};

// Makes the compiler load v once into a register: left alone, it folds the
// load into every FMA that uses v (R loads instead of one), and the tile
// becomes load-bound.
template <typename V>
[[gnu::always_inline]] inline void KeepInRegister(V& v) {
#if defined(__x86_64__) && defined(__AVX512F__)
  asm("" : "+v"(v));  // any of the 32 vector registers
#elif defined(__x86_64__)
  asm("" : "+x"(v));
#endif
}

// c (+)= a * b for an R-row, NV-vector tile: c [R, NV*W] with ld ldc, a [R, depth]
// with ld lda, b [depth, NV*W] with ld ldb. Accumulators stay in registers.
template <typename C, int R, int NV>
inline void GemmTile(int64_t depth, const C* a, int64_t lda, const C* b, int64_t ldb, C* c,
                     int64_t ldc, bool accumulate) {
  constexpr int64_t W = kWidth<C>;
  Vec<C> acc[R][NV];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int x = 0; x < NV; ++x) acc[r][x] = accumulate ? LoadV(c + r * ldc + x * W) : Vec<C>{};
  }
  for (int64_t k = 0; k < depth; ++k) {
    Vec<C> bv[NV];
#pragma GCC unroll 4
    for (int x = 0; x < NV; ++x) {
      bv[x] = LoadV(b + k * ldb + x * W);
      KeepInRegister(bv[x]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const C av = a[r * lda + k];
#pragma GCC unroll 4
      for (int x = 0; x < NV; ++x) acc[r][x] += bv[x] * av;
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int x = 0; x < NV; ++x) StoreV(c + r * ldc + x * W, acc[r][x]);
  }
}

template <typename C, int NV>
void GemmColumns(int64_t m, int64_t depth, const C* a, int64_t lda, const C* b, int64_t ldb, C* c,
                 int64_t ldc, bool accumulate) {
  int64_t r = 0;
  for (; r + 4 <= m; r += 4) {
    GemmTile<C, 4, NV>(depth, a + r * lda, lda, b, ldb, c + r * ldc, ldc, accumulate);
  }
  a += r * lda;
  c += r * ldc;
  switch (m - r) {
    case 3:
      GemmTile<C, 3, NV>(depth, a, lda, b, ldb, c, ldc, accumulate);
      break;
    case 2:
      GemmTile<C, 2, NV>(depth, a, lda, b, ldb, c, ldc, accumulate);
      break;
    case 1:
      GemmTile<C, 1, NV>(depth, a, lda, b, ldb, c, ldc, accumulate);
      break;
    default:
      break;
  }
}

// c [m, n] (+)= a [m, depth] * b [depth, n], all row-major. n, ldb and ldc are
// multiples of the vector width and b, c are vector-aligned.
template <typename C>
void SmallGemm(int64_t m, int64_t n, int64_t depth, const C* a, int64_t lda, const C* b,
               int64_t ldb, C* c, int64_t ldc, bool accumulate) {
  constexpr int64_t W = kWidth<C>;
  int64_t col = 0;
  for (; col + kTileVectors * W <= n; col += kTileVectors * W) {
    GemmColumns<C, kTileVectors>(m, depth, a, lda, b + col, ldb, c + col, ldc, accumulate);
  }
  switch ((n - col) / W) {  // fewer than kTileVectors vectors left
    case 3:
      GemmColumns<C, 3>(m, depth, a, lda, b + col, ldb, c + col, ldc, accumulate);
      break;
    case 2:
      GemmColumns<C, 2>(m, depth, a, lda, b + col, ldb, c + col, ldc, accumulate);
      break;
    case 1:
      GemmColumns<C, 1>(m, depth, a, lda, b + col, ldb, c + col, ldc, accumulate);
      break;
    default:
      break;
  }
}

// ---- Row operations (n a multiple of the vector width, rows aligned).

template <typename C>
inline C RowMax(const C* row, int64_t n) {
  Vec<C> m = LoadV(row);
  for (int64_t j = kWidth<C>; j < n; j += kWidth<C>) {
    const Vec<C> x = LoadV(row + j);
    m = x > m ? x : m;
  }
  return LaneMax<C>(m);
}

// row = exp(row - shift); returns the lane-wise sum of the new row.
template <typename C>
[[gnu::always_inline]] inline Vec<C> ExpShifted(C* row, int64_t n, C shift) {
  Vec<C> sum{};
  for (int64_t j = 0; j < n; j += kWidth<C>) {
    const Vec<C> p = Exp(LoadV(row + j) - shift);
    StoreV(row + j, p);
    sum += p;
  }
  return sum;
}

template <typename C>
void ScaleRow(C* row, int64_t n, C alpha) {
  for (int64_t j = 0; j < n; j += kWidth<C>) StoreV(row + j, LoadV(row + j) * alpha);
}

// Probabilities p = exp(s - lse) and score gradients ds = p * (dp - d), in
// place: s becomes p, dp becomes ds. One query row (scalar lse, d) ...
template <typename C>
[[gnu::always_inline]] inline void ScoreGradRow(C* s, C* dp, int64_t n, C lse, C d) {
  for (int64_t j = 0; j < n; j += kWidth<C>) {
    const Vec<C> p = Exp(LoadV(s + j) - lse);
    StoreV(s + j, p);
    StoreV(dp + j, p * (LoadV(dp + j) - d));
  }
}

// ... or one key row of the transposed block (a lse and d per query column).
template <typename C>
[[gnu::always_inline]] inline void ScoreGradRowT(C* s, C* dp, int64_t n, const C* lse, const C* d) {
  for (int64_t j = 0; j < n; j += kWidth<C>) {
    const Vec<C> p = Exp(LoadV(s + j) - LoadV(lse + j));
    StoreV(s + j, p);
    StoreV(dp + j, p * (LoadV(dp + j) - LoadV(d + j)));
  }
}

}  // namespace loom::cpu::attention_internal

#endif  // LOOM_KERNELS_CPU_ATTENTION_BLOCKS_H_
