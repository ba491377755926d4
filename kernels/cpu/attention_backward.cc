// CPU scaled-dot-product attention backward, FlashAttention-2 style.
//
// Recomputes the probabilities from q, k and the saved lse in two kinds of
// tasks: dk/dv tasks own (sequence, kv head, key block) and sum over the
// group's query heads and query blocks in a fixed order; dq tasks own
// (sequence, query head, query block). Each output row is written by one task
// that sums in a fixed order, so results are bit-identical for any thread
// count. Packing and the block products: attention_packing.h,
// attention_blocks.h.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_blocks.h"
#include "kernels/cpu/attention_packing.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/parallel.h"

namespace loom::cpu {
namespace {

using attention_internal::AlignedBuffer;
using attention_internal::CheckAttentionShapes;
using attention_internal::CheckLike;
using attention_internal::kBlock;
using attention_internal::kWidth;
using attention_internal::MakeProblem;
using attention_internal::Packed;
using attention_internal::Problem;
using attention_internal::QueryTasks;
using attention_internal::RoundUp;
using attention_internal::RunTasks;
using attention_internal::ScoreGradRow;
using attention_internal::ScoreGradRowT;
using attention_internal::Sequence;
using attention_internal::SmallGemm;
using attention_internal::SortTasks;
using attention_internal::StoreRow;
using attention_internal::Task;

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

}  // namespace

void CpuBackend::AttentionBackward(const Tensor& q, const Tensor& k, const Tensor& v,
                                   const Tensor& out, const Tensor& lse, const Tensor& gout,
                                   const AttentionParams& params, const Tensor& gq,
                                   const Tensor& gk, const Tensor& gv) {
  const char* op = "AttentionBackward";
  CheckAttentionShapes(op, q, k, v, params);
  CheckLike(op, "out", out, q.sizes(), q.dtype());
  CheckLike(op, "gout", gout, q.sizes(), q.dtype());
  CheckLike(op, "lse", lse, {q.size(0), q.size(2), q.size(1)}, StatDTypeOf(q.dtype()));
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
