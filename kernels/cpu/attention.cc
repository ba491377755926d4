// CPU scaled-dot-product attention, FlashAttention-2 style.
//
// Forward: a task per (sequence, query head, block of 64 queries) streams
// over blocks of 64 keys with an online softmax (running max and sum per
// query), so the T x S score matrix never exists. Backward recomputes the
// probabilities from q, k and the saved lse in two kinds of tasks: dk/dv tasks
// own (sequence, kv head, key block) and sum over the group's query heads and
// query blocks in a fixed order; dq tasks own (sequence, query head, query
// block). Each output row is written by one task that sums in a fixed order,
// so results are bit-identical for any thread count; a shared counter only
// decides which thread runs which task.
//
// Inputs are first packed once into zero-padded, 64-byte aligned copies in the
// compute type (f32 for 16-bit floats; q pre-multiplied by the softmax scale),
// with each block also stored transposed, so that every block product is a
// register-tiled small GEMM on GCC/Clang vector types, which lower to the
// target's SIMD (AVX-512, AVX2, ...).
#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "runtime/parallel.h"

namespace loom::cpu {
namespace {

// ---- SIMD building blocks.

// The widest vectors the target has registers for (wider ones would be passed
// in memory, changing the ABI): 64 bytes with AVX-512, 32 with AVX, else 16.
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif
// GEMM tiles are 4 rows x kTileVectors vectors of accumulators, which must fit
// in the register file with room to spare (32 registers with AVX-512, else 16).
constexpr int kTileVectors = kVectorBytes == 64 ? 4 : 2;

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

// ---- Problem description.

inline int64_t RoundUp(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Token ranges over the flattened B*T (queries) and B*S (keys) axes.
struct Sequence {
  int64_t q_begin, q_len, k_begin, k_len;
};

std::vector<Sequence> BuildSequences(int64_t b, int64_t t, int64_t s, const AttentionParams& p) {
  std::vector<Sequence> seqs;
  if (!p.cu_seqlens_q.defined()) {
    LOOM_CHECK(!p.cu_seqlens_k.defined(), "Attention: cu_seqlens_k given without cu_seqlens_q");
    for (int64_t r = 0; r < b; ++r) seqs.push_back({r * t, t, r * s, s});
    return seqs;
  }
  const Tensor& cq = p.cu_seqlens_q;
  const Tensor& ck = p.cu_seqlens_k;
  LOOM_CHECK(ck.defined() && cq.dtype() == DType::kI32 && ck.dtype() == DType::kI32 &&
                 cq.dim() == 1 && ck.dim() == 1 && cq.size(0) == ck.size(0) && cq.size(0) >= 1 &&
                 cq.is_contiguous() && ck.is_contiguous(),
             "Attention: cu_seqlens_q and cu_seqlens_k must be contiguous i32 [n + 1] of one size");
  const int32_t* q = cq.data<int32_t>();
  const int32_t* k = ck.data<int32_t>();
  const int64_t n = cq.size(0) - 1;
  LOOM_CHECK(q[0] == 0 && k[0] == 0 && q[n] == b * t && k[n] == b * s,
             "Attention: cu_seqlens must run from 0 to B*T = %d (queries) and B*S = %d (keys)",
             b * t, b * s);
  for (int64_t i = 0; i < n; ++i) {
    const Sequence seq{q[i], q[i + 1] - q[i], k[i], k[i + 1] - k[i]};
    LOOM_CHECK(seq.q_len >= 0 && seq.k_len >= 0, "Attention: cu_seqlens must be non-decreasing");
    LOOM_CHECK((seq.q_len == 0 || seq.q_begin / t == (seq.q_begin + seq.q_len - 1) / t) &&
                   (seq.k_len == 0 || seq.k_begin / s == (seq.k_begin + seq.k_len - 1) / s),
               "Attention: sequence %d crosses a batch row boundary", i);
    seqs.push_back(seq);
  }
  return seqs;
}

template <typename C>
struct Problem {
  int64_t t, s, h, g, e;
  int64_t ep;            // e rounded up to the vector width
  int64_t heads_per_kv;  // h / g
  bool causal;
  C scale;
  std::vector<Sequence> seqs;

  int64_t q_offset(int64_t token, int64_t head) const { return (token * h + head) * e; }
  int64_t kv_offset(int64_t token, int64_t kv_head) const { return (token * g + kv_head) * e; }
  // lse is [B, H, T]: row token / t, position token % t.
  int64_t lse_offset(int64_t token, int64_t head) const {
    return ((token / t) * h + head) * t + token % t;
  }
  // Query i of `seq` sees keys [0, KeyEnd(seq, i)); causal is bottom-right aligned.
  int64_t KeyEnd(const Sequence& seq, int64_t i) const {
    if (!causal) return seq.k_len;
    return std::clamp<int64_t>(i + seq.k_len - seq.q_len + 1, 0, seq.k_len);
  }
  // The first query of `seq` that sees key j (q_len or more: none).
  int64_t FirstQuery(const Sequence& seq, int64_t j) const {
    if (!causal) return 0;
    return std::max<int64_t>(0, j - (seq.k_len - seq.q_len));
  }
};

template <typename C>
Problem<C> MakeProblem(const Tensor& q, const Tensor& k, const AttentionParams& params) {
  Problem<C> p;
  p.t = q.size(1);
  p.s = k.size(1);
  p.h = q.size(2);
  p.g = k.size(2);
  p.e = q.size(3);
  p.ep = RoundUp(p.e, kWidth<C>);
  p.heads_per_kv = p.h / p.g;
  p.causal = params.causal;
  p.scale = C(params.scale);
  p.seqs = BuildSequences(q.size(0), p.t, p.s, params);
  return p;
}

// ---- Packed inputs.

// A compute-type copy of one [tokens, heads, e] input in the layouts the block
// products read, per head: rows [tokens, ep] and, for each kBlock-token block
// of a sequence, the block transposed [ep, n_pad] (n_pad = its length rounded
// up to the vector width). Every sequence starts at a multiple of the vector
// width; padding is zero, as it enters the products. Built once per call, so
// the blocks are not re-converted for every pair of blocks that meet.
constexpr int64_t kBlock = 64;  // query and key block length
static_assert(kBlock % kWidth<float> == 0 && kBlock % kWidth<double> == 0);

// dst[0, ep) = scale * src[0, e), zero-padded.
template <typename T, typename C>
inline void ConvertRow(const T* src, int64_t e, C scale, C* dst, int64_t ep) {
  int64_t c = 0;
  if constexpr (std::is_same_v<T, C>) {
    for (; c + kWidth<C> <= e; c += kWidth<C>) {
      Vec<C> x;
      std::memcpy(&x, src + c, sizeof(x));
      StoreV(dst + c, x * scale);
    }
  }
  for (; c < e; ++c) dst[c] = scale * Load(src[c]);
  std::fill(dst + e, dst + ep, C(0));
}

// dst[0, e) = scale * src[0, e), rounded to T. Vector stores for f32 and f64:
// fewer stores in flight when dst is not in cache.
template <typename T, typename C>
inline void StoreRow(const C* src, int64_t e, C scale, T* dst) {
  int64_t c = 0;
  if constexpr (std::is_same_v<T, C>) {
    for (; c + kWidth<C> <= e; c += kWidth<C>) {
      const Vec<C> x = LoadV(src + c) * scale;
      std::memcpy(dst + c, &x, sizeof(x));
    }
  }
  for (; c < e; ++c) dst[c] = Store<T>(src[c] * scale);
}

template <typename C>
class Packed {
 public:
  enum Layout { kRows = 1, kTransposed = 2, kBoth = 3 };

  // `src` is [tokens, heads, e]; packs the query tokens of `seqs` (with
  // `keys`, their key tokens) in `layout`.
  template <typename T>
  Packed(const T* src, int64_t heads, int64_t e, int64_t ep, C scale,
         const std::vector<Sequence>& seqs, bool keys, Layout layout)
      : ep_(ep), begin_(seqs.size()) {
    std::vector<std::pair<int64_t, int64_t>> blocks;  // (sequence, first token)
    for (size_t i = 0; i < seqs.size(); ++i) {
      const int64_t len = keys ? seqs[i].k_len : seqs[i].q_len;
      begin_[i] = tokens_;
      tokens_ += RoundUp(len, kWidth<C>);
      for (int64_t j0 = 0; j0 < len; j0 += kBlock) blocks.push_back({int64_t(i), j0});
    }
    // Tensors, so that the workspace shows in the memory statistics.
    const bool keep_rows = layout & kRows, transposed = layout & kTransposed;
    if (keep_rows) rows_ = Tensor::Empty({heads * tokens_ * ep}, DTypeOf<C>::value);
    if (transposed) cols_ = Tensor::Empty({heads * tokens_ * ep}, DTypeOf<C>::value);
    const int64_t num_blocks = int64_t(blocks.size());
    ParallelFor(heads * num_blocks, 1, [&](int64_t u0, int64_t u1) {
      AlignedBuffer<C> block_rows(keep_rows ? 0 : kBlock * ep);  // when rows are not kept
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t head = u / num_blocks;
        const auto [seq, j0] = blocks[size_t(u % num_blocks)];
        const int64_t first = keys ? seqs[seq].k_begin : seqs[seq].q_begin;
        const int64_t len = keys ? seqs[seq].k_len : seqs[seq].q_len;
        const int64_t n = std::min(kBlock, len - j0), n_pad = RoundUp(n, kWidth<C>);
        C* rows = keep_rows ? const_cast<C*>(row(head, seq, j0)) : block_rows.get();
        for (int64_t j = 0; j < n; ++j) {
          ConvertRow(src + ((first + j0 + j) * heads + head) * e, e, scale, rows + j * ep, ep);
        }
        std::fill(rows + n * ep, rows + n_pad * ep, C(0));
        if (!transposed) continue;
        C* cols = const_cast<C*>(block_t(head, seq, j0));
        for (int64_t c = 0; c < ep; ++c) {
          for (int64_t j = 0; j < n_pad; ++j) cols[c * n_pad + j] = rows[j * ep + c];
        }
      }
    });
  }

  // Token i of sequence `seq`: ep values.
  const C* row(int64_t head, int64_t seq, int64_t i) const {
    return rows_.data<C>() + offset(head, seq, i);
  }
  // The block starting at token i0 of `seq`, transposed: [ep, n_pad].
  const C* block_t(int64_t head, int64_t seq, int64_t i0) const {
    return cols_.data<C>() + offset(head, seq, i0);
  }

 private:
  int64_t offset(int64_t head, int64_t seq, int64_t i) const {
    return (head * tokens_ + begin_[size_t(seq)] + i) * ep_;
  }

  int64_t ep_, tokens_ = 0;     // tokens_: padded total
  std::vector<int64_t> begin_;  // first padded token of each sequence
  Tensor rows_, cols_;
};

// ---- Scheduling.

struct Task {
  int64_t seq, head;  // head is a kv head for dk/dv tasks
  int64_t block;      // first token of the block in the sequence
  int64_t cost;       // block products to compute
  bool key_side;      // a dk/dv task (backward only)
};

// Runs process(task, state) for tasks [0, n) on all threads, with one state
// per thread from make_state(). Tasks are taken in list order from a shared
// counter; every task writes only its own outputs, so the schedule does not
// affect results.
template <typename MakeState, typename Process>
void RunTasks(int64_t n, MakeState&& make_state, Process&& process) {
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(NumThreads(), n);
  ParallelFor(workers, 1, [&](int64_t, int64_t) {
    auto state = make_state();
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      process(i, state);
    }
  });
}

// Groups tasks by kv head, so that consecutive tasks reuse the same packed k
// and v from cache, and puts the heaviest first within a group, so that the
// list ends with light tasks and the threads finish together.
void SortTasks(std::vector<Task>& tasks, int64_t heads_per_kv) {
  auto kv_head = [&](const Task& t) { return t.key_side ? t.head : t.head / heads_per_kv; };
  std::stable_sort(tasks.begin(), tasks.end(), [&](const Task& a, const Task& b) {
    if (kv_head(a) != kv_head(b)) return kv_head(a) < kv_head(b);
    return a.cost > b.cost;
  });
}

// A task per (sequence, query head, query block); `products` per pair of
// query and key blocks weigh them.
template <typename C>
std::vector<Task> QueryTasks(const Problem<C>& p, int64_t products) {
  std::vector<Task> tasks;
  for (int64_t si = 0; si < int64_t(p.seqs.size()); ++si) {
    const Sequence& seq = p.seqs[si];
    for (int64_t i0 = 0; i0 < seq.q_len; i0 += kBlock) {
      const int64_t last = std::min(seq.q_len, i0 + kBlock) - 1;
      const int64_t cost = 1 + products * ((p.KeyEnd(seq, last) + kBlock - 1) / kBlock);
      for (int64_t head = 0; head < p.h; ++head) tasks.push_back({si, head, i0, cost, false});
    }
  }
  return tasks;
}

// ---- Forward.

template <typename C>
struct ForwardScratch {
  explicit ForwardScratch(int64_t ep)
      : q(kBlock * ep), s(kBlock * kBlock), o(kBlock * ep), m(kBlock), l(kBlock * kWidth<C>) {}
  AlignedBuffer<C> q, s, o, m;
  AlignedBuffer<C> l;  // per query, the running sum as lanes (summed up at the end)
};

template <typename T, typename C>
void ForwardBlock(const Problem<C>& p, const Task& task, const T* q, const Packed<C>& k,
                  const Packed<C>& v, T* out, C* lse, ForwardScratch<C>& w) {
  constexpr C kNegInf = -std::numeric_limits<C>::infinity();
  const Sequence& seq = p.seqs[task.seq];
  const int64_t head = task.head, kv_head = head / p.heads_per_kv, ep = p.ep;
  const int64_t i0 = task.block, nq = std::min(kBlock, seq.q_len - i0);
  C *qb = w.q.get(), *s = w.s.get(), *o = w.o.get(), *m = w.m.get(), *l = w.l.get();
  // q * scale, so that q k^T are the scaled scores.
  for (int64_t i = 0; i < nq; ++i) {
    ConvertRow(q + p.q_offset(seq.q_begin + i0 + i, head), p.e, p.scale, qb + i * ep, ep);
  }
  std::fill(o, o + nq * ep, C(0));
  std::fill(m, m + nq, kNegInf);
  std::fill(l, l + nq * kWidth<C>, C(0));
  const int64_t key_end = p.KeyEnd(seq, i0 + nq - 1);
  for (int64_t j0 = 0; j0 < key_end; j0 += kBlock) {
    const int64_t nk = std::min(kBlock, seq.k_len - j0), nk_pad = RoundUp(nk, kWidth<C>);
    SmallGemm(nq, nk_pad, ep, qb, ep, k.block_t(kv_head, task.seq, j0), nk_pad, s, kBlock, false);
    for (int64_t i = 0; i < nq; ++i) {
      C* row = s + i * kBlock;
      const int64_t visible = std::min(nk, p.KeyEnd(seq, i0 + i) - j0);
      if (visible <= 0) {
        std::fill(row, row + nk_pad, C(0));
        continue;
      }
      std::fill(row + visible, row + nk_pad, kNegInf);
      const C m_new = std::max(m[i], RowMax(row, nk_pad));
      const Vec<C> sum = ExpShifted(row, nk_pad, m_new);
      C* li = l + i * kWidth<C>;
      if (m[i] != m_new) {  // rescale what was summed under the old max
        const C alpha = std::exp(m[i] - m_new);
        ScaleRow(o + i * ep, ep, alpha);
        StoreV(li, LoadV(li) * alpha);
      }
      StoreV(li, LoadV(li) + sum);
      m[i] = m_new;
    }
    SmallGemm(nq, ep, nk, s, kBlock, v.row(kv_head, task.seq, j0), ep, o, ep, true);
  }
  for (int64_t i = 0; i < nq; ++i) {
    const int64_t token = seq.q_begin + i0 + i;
    T* dst = out + p.q_offset(token, head);
    const C* row = o + i * ep;
    const C li = LaneSum<C>(LoadV(l + i * kWidth<C>));
    if (li > 0) {
      const C inv = C(1) / li;
      StoreRow(row, p.e, inv, dst);
      lse[p.lse_offset(token, head)] = m[i] + std::log(li);
    } else {  // sees no key
      std::fill(dst, dst + p.e, Store<T>(C(0)));
      lse[p.lse_offset(token, head)] = kNegInf;
    }
  }
}

// ---- Backward.

// Packed inputs of the backward: q is pre-scaled, so q k^T are the scaled
// scores, dk = dS^T q and dq = scale * dS k.
template <typename C>
struct BackwardInputs {
  const Packed<C>& q;
  const Packed<C>& dout;
  const Packed<C>& k;
  const Packed<C>& v;
  // Per query head and token ([H, B*T]): lse, with +inf for queries that see
  // no key (so that exp(s - lse) = 0), and <dout, out>, the row sums of P * dP.
  const C* lse;
  const C* delta;
  int64_t tokens;  // B*T
};

template <typename C>
struct BackwardScratch {
  explicit BackwardScratch(int64_t ep)
      : s(kBlock * kBlock),
        dp(kBlock * kBlock),
        acc1(kBlock * ep),
        acc2(kBlock * ep),
        lse(kBlock),
        d(kBlock) {}
  AlignedBuffer<C> s, dp, acc1, acc2, lse, d;
};

// dq for one query block: sum over its visible key blocks in order.
template <typename T, typename C>
void QueryGradBlock(const Problem<C>& p, const Task& task, const BackwardInputs<C>& in, T* gq,
                    BackwardScratch<C>& w) {
  const Sequence& seq = p.seqs[task.seq];
  const int64_t head = task.head, kv_head = head / p.heads_per_kv, ep = p.ep;
  const int64_t i0 = task.block, nq = std::min(kBlock, seq.q_len - i0);
  C *s = w.s.get(), *dp = w.dp.get(), *dq = w.acc1.get(), *lse = w.lse.get(), *d = w.d.get();
  const C* qb = in.q.row(head, task.seq, i0);
  const C* dob = in.dout.row(head, task.seq, i0);
  const int64_t stat = head * in.tokens + seq.q_begin + i0;
  std::copy(in.lse + stat, in.lse + stat + nq, lse);
  std::copy(in.delta + stat, in.delta + stat + nq, d);
  std::fill(dq, dq + nq * ep, C(0));
  const int64_t key_end = p.KeyEnd(seq, i0 + nq - 1);
  for (int64_t j0 = 0; j0 < key_end; j0 += kBlock) {
    const int64_t nk = std::min(kBlock, seq.k_len - j0), nk_pad = RoundUp(nk, kWidth<C>);
    SmallGemm(nq, nk_pad, ep, qb, ep, in.k.block_t(kv_head, task.seq, j0), nk_pad, s, kBlock,
              false);
    SmallGemm(nq, nk_pad, ep, dob, ep, in.v.block_t(kv_head, task.seq, j0), nk_pad, dp, kBlock,
              false);
    for (int64_t i = 0; i < nq; ++i) {
      C *srow = s + i * kBlock, *dprow = dp + i * kBlock;
      const int64_t visible = std::min(nk, p.KeyEnd(seq, i0 + i) - j0);
      if (visible <= 0) {
        std::fill(dprow, dprow + nk_pad, C(0));
        continue;
      }
      std::fill(srow + visible, srow + nk_pad, -std::numeric_limits<C>::infinity());
      ScoreGradRow(srow, dprow, nk_pad, lse[i], d[i]);
    }
    SmallGemm(nq, ep, nk, dp, kBlock, in.k.row(kv_head, task.seq, j0), ep, dq, ep, true);
  }
  for (int64_t i = 0; i < nq; ++i) {
    StoreRow(dq + i * ep, p.e, p.scale, gq + p.q_offset(seq.q_begin + i0 + i, head));
  }
}

// dk and dv for one key block: sum over the group's query heads, then over
// query blocks, in that fixed order. Works on transposed scores (keys x queries).
template <typename T, typename C>
void KeyValueGradBlock(const Problem<C>& p, const Task& task, const BackwardInputs<C>& in, T* gk,
                       T* gv, BackwardScratch<C>& w) {
  const Sequence& seq = p.seqs[task.seq];
  const int64_t kv_head = task.head, ep = p.ep;
  const int64_t j0 = task.block, nk = std::min(kBlock, seq.k_len - j0);
  C *st = w.s.get(), *dpt = w.dp.get(), *dk = w.acc1.get(), *dv = w.acc2.get();
  C *lse = w.lse.get(), *d = w.d.get();
  const C* kb = in.k.row(kv_head, task.seq, j0);
  const C* vb = in.v.row(kv_head, task.seq, j0);
  std::fill(dk, dk + nk * ep, C(0));
  std::fill(dv, dv + nk * ep, C(0));
  const int64_t first_block = p.FirstQuery(seq, j0) / kBlock * kBlock;
  for (int64_t r = 0; r < p.heads_per_kv; ++r) {
    const int64_t head = kv_head * p.heads_per_kv + r;
    for (int64_t i0 = first_block; i0 < seq.q_len; i0 += kBlock) {
      const int64_t nq = std::min(kBlock, seq.q_len - i0), nq_pad = RoundUp(nq, kWidth<C>);
      // Padding columns get lse = +inf: probability 0.
      const int64_t stat = head * in.tokens + seq.q_begin + i0;
      std::copy(in.lse + stat, in.lse + stat + nq, lse);
      std::fill(lse + nq, lse + nq_pad, std::numeric_limits<C>::infinity());
      std::copy(in.delta + stat, in.delta + stat + nq, d);
      std::fill(d + nq, d + nq_pad, C(0));
      SmallGemm(nk, nq_pad, ep, kb, ep, in.q.block_t(head, task.seq, i0), nq_pad, st, kBlock,
                false);
      SmallGemm(nk, nq_pad, ep, vb, ep, in.dout.block_t(head, task.seq, i0), nq_pad, dpt, kBlock,
                false);
      for (int64_t j = 0; j < nk; ++j) {
        C *srow = st + j * kBlock, *dprow = dpt + j * kBlock;
        ScoreGradRowT(srow, dprow, nq_pad, lse, d);
        // Causal: queries before the first one that sees key j0 + j.
        const int64_t hidden = std::clamp<int64_t>(p.FirstQuery(seq, j0 + j) - i0, 0, nq_pad);
        std::fill(srow, srow + hidden, C(0));
        std::fill(dprow, dprow + hidden, C(0));
      }
      SmallGemm(nk, ep, nq, st, kBlock, in.dout.row(head, task.seq, i0), ep, dv, ep, true);
      SmallGemm(nk, ep, nq, dpt, kBlock, in.q.row(head, task.seq, i0), ep, dk, ep, true);
    }
  }
  for (int64_t j = 0; j < nk; ++j) {
    const int64_t off = p.kv_offset(seq.k_begin + j0 + j, kv_head);
    StoreRow(dk + j * ep, p.e, C(1), gk + off);
    StoreRow(dv + j * ep, p.e, C(1), gv + off);
  }
}

void CheckAttentionShapes(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                          const AttentionParams& params) {
  LOOM_CHECK(q.dim() == 4 && k.dim() == 4 && v.sizes() == k.sizes() && q.size(0) == k.size(0) &&
                 q.size(3) == k.size(3) && k.size(2) > 0 && q.size(2) % k.size(2) == 0 &&
                 q.size(3) > 0,
             "%s: expected q [B, T, H, E] and k, v [B, S, G, E] with H %% G == 0, got %s, %s, %s",
             op, q.ShapeString(), k.ShapeString(), v.ShapeString());
  LOOM_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype(), "%s: q, k, v dtypes differ", op);
  LOOM_CHECK(q.is_contiguous() && k.is_contiguous() && v.is_contiguous(),
             "%s: q, k, v must be contiguous", op);
  LOOM_CHECK(params.scale != 0 && std::isfinite(params.scale),
             "%s: scale must be finite and nonzero, got %g", op, params.scale);
}

void CheckLike(const char* op, const char* name, const Tensor& t, DimsRef sizes, DType dtype) {
  LOOM_CHECK(
      t.sizes() == Dims(sizes.begin(), sizes.end()) && t.dtype() == dtype && t.is_contiguous(),
      "%s: %s must be a contiguous %s %s, got %s %s", op, name, std::string(DTypeName(dtype)),
      DimsString(sizes), std::string(DTypeName(t.dtype())), t.ShapeString());
}

DType StatDType(DType dtype) { return dtype == DType::kF64 ? DType::kF64 : DType::kF32; }

}  // namespace

void CpuBackend::AttentionForward(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const AttentionParams& params, const Tensor& out,
                                  const Tensor& lse) {
  CheckAttentionShapes("AttentionForward", q, k, v, params);
  CheckLike("AttentionForward", "out", out, q.sizes(), q.dtype());
  CheckLike("AttentionForward", "lse", lse, {q.size(0), q.size(2), q.size(1)},
            StatDType(q.dtype()));
  if (q.numel() == 0) return;
  DispatchFloating(q.dtype(), "AttentionForward", [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const Problem<C> p = MakeProblem<C>(q, k, params);
    using Layout = typename Packed<C>::Layout;
    const Packed<C> kp(k.data<T>(), p.g, p.e, p.ep, C(1), p.seqs, /*keys=*/true,
                       Layout::kTransposed);
    const Packed<C> vp(v.data<T>(), p.g, p.e, p.ep, C(1), p.seqs, /*keys=*/true, Layout::kRows);
    std::vector<Task> tasks = QueryTasks(p, /*products=*/2);
    SortTasks(tasks, p.heads_per_kv);
    const T* qs = q.data<T>();
    T* os = out.data<T>();
    C* ls = lse.data<C>();
    RunTasks(
        int64_t(tasks.size()), [&] { return ForwardScratch<C>(p.ep); },
        [&](int64_t i, ForwardScratch<C>& w) { ForwardBlock(p, tasks[i], qs, kp, vp, os, ls, w); });
  });
}

void CpuBackend::AttentionBackward(const Tensor& q, const Tensor& k, const Tensor& v,
                                   const Tensor& out, const Tensor& lse, const Tensor& gout,
                                   const AttentionParams& params, const Tensor& gq,
                                   const Tensor& gk, const Tensor& gv) {
  const char* op = "AttentionBackward";
  CheckAttentionShapes(op, q, k, v, params);
  CheckLike(op, "out", out, q.sizes(), q.dtype());
  CheckLike(op, "gout", gout, q.sizes(), q.dtype());
  CheckLike(op, "lse", lse, {q.size(0), q.size(2), q.size(1)}, StatDType(q.dtype()));
  CheckLike(op, "gq", gq, q.sizes(), q.dtype());
  CheckLike(op, "gk", gk, k.sizes(), k.dtype());
  CheckLike(op, "gv", gv, v.sizes(), v.dtype());
  if (q.numel() == 0 && k.numel() == 0) return;
  DispatchFloating(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    const Problem<C> p = MakeProblem<C>(q, k, params);
    const T* os = out.data<T>();
    const T* gos = gout.data<T>();

    const int64_t tokens = q.size(0) * p.t;
    std::vector<C> lse_ht(static_cast<size_t>(p.h * tokens)), delta_ht(lse_ht.size());
    const C* ls = lse.data<C>();
    ParallelFor(tokens, std::max<int64_t>(1, 16384 / (p.h * p.e)), [&](int64_t begin, int64_t end) {
      for (int64_t token = begin; token < end; ++token) {
        for (int64_t head = 0; head < p.h; ++head) {
          const C l = ls[p.lse_offset(token, head)];
          lse_ht[head * tokens + token] = std::isinf(l) ? std::numeric_limits<C>::infinity() : l;
          const int64_t off = p.q_offset(token, head);
          C sum = 0;
          for (int64_t c = 0; c < p.e; ++c) sum += Load(gos[off + c]) * Load(os[off + c]);
          delta_ht[head * tokens + token] = sum;
        }
      }
    });
    const auto both = Packed<C>::Layout::kBoth;
    const Packed<C> qp(q.data<T>(), p.h, p.e, p.ep, p.scale, p.seqs, /*keys=*/false, both);
    const Packed<C> dop(gos, p.h, p.e, p.ep, C(1), p.seqs, /*keys=*/false, both);
    const Packed<C> kp(k.data<T>(), p.g, p.e, p.ep, C(1), p.seqs, /*keys=*/true, both);
    const Packed<C> vp(v.data<T>(), p.g, p.e, p.ep, C(1), p.seqs, /*keys=*/true, both);
    const BackwardInputs<C> in{qp, dop, kp, vp, lse_ht.data(), delta_ht.data(), tokens};

    // dq tasks and dk/dv tasks write disjoint outputs: schedule them together.
    std::vector<Task> tasks = QueryTasks(p, /*products=*/3);
    for (int64_t si = 0; si < int64_t(p.seqs.size()); ++si) {
      const Sequence& seq = p.seqs[si];
      for (int64_t j0 = 0; j0 < seq.k_len; j0 += kBlock) {
        const int64_t first = std::min(p.FirstQuery(seq, j0), seq.q_len);
        const int64_t cost = 1 + 4 * p.heads_per_kv * ((seq.q_len - first + kBlock - 1) / kBlock);
        for (int64_t g = 0; g < p.g; ++g) tasks.push_back({si, g, j0, cost, true});
      }
    }
    SortTasks(tasks, p.heads_per_kv);
    T *gqs = gq.data<T>(), *gks = gk.data<T>(), *gvs = gv.data<T>();
    RunTasks(
        int64_t(tasks.size()), [&] { return BackwardScratch<C>(p.ep); },
        [&](int64_t i, BackwardScratch<C>& w) {
          if (tasks[i].key_side) {
            KeyValueGradBlock(p, tasks[i], in, gks, gvs, w);
          } else {
            QueryGradBlock(p, tasks[i], in, gqs, w);
          }
        });
  });
}

}  // namespace loom::cpu
