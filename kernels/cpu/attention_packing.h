// The problem description, packed inputs and task scheduling shared by the
// CPU attention kernels (attention_forward.cc, attention_backward.cc).
//
// Inputs are first packed once into zero-padded, 64-byte aligned copies in the
// compute type (f32 for 16-bit floats; q pre-multiplied by the softmax scale),
// with each block also stored transposed, so that every block product is a
// register-tiled small GEMM (attention_blocks.h).
//
// Work is split into tasks that each own a block of output rows and sum in a
// fixed order, so results are bit-identical for any thread count; a shared
// counter only decides which thread runs which task.
#ifndef LOOM_KERNELS_CPU_ATTENTION_PACKING_H_
#define LOOM_KERNELS_CPU_ATTENTION_PACKING_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cpu/attention_blocks.h"
#include "runtime/backend.h"
#include "runtime/dtype.h"
#include "runtime/parallel.h"
#include "runtime/status.h"
#include "runtime/tensor.h"

namespace loom::cpu::attention_internal {

// ---- Problem description.

inline int64_t RoundUp(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Token ranges over the flattened B*T (queries) and B*S (keys) axes.
struct Sequence {
  int64_t q_begin, q_len, k_begin, k_len;
};

inline std::vector<Sequence> BuildSequences(int64_t b, int64_t t, int64_t s,
                                            const AttentionParams& p) {
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
inline constexpr int64_t kBlock = 64;  // query and key block length
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
inline void SortTasks(std::vector<Task>& tasks, int64_t heads_per_kv) {
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

// ---- Argument checks.

inline void CheckAttentionShapes(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
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

inline void CheckLike(const char* op, const char* name, const Tensor& t, DimsRef sizes,
                      DType dtype) {
  LOOM_CHECK(
      t.sizes() == Dims(sizes.begin(), sizes.end()) && t.dtype() == dtype && t.is_contiguous(),
      "%s: %s must be a contiguous %s %s, got %s %s", op, name, std::string(DTypeName(dtype)),
      DimsString(sizes), std::string(DTypeName(t.dtype())), t.ShapeString());
}

}  // namespace loom::cpu::attention_internal

#endif  // LOOM_KERNELS_CPU_ATTENTION_PACKING_H_
