// CPU scaled-dot-product attention forward, FlashAttention-2 style.
//
// A task per (sequence, query head, block of 64 queries) streams over blocks
// of 64 keys with an online softmax (running max and sum per query), so the
// T x S score matrix never exists. Each output row is written by one task that
// sums in a fixed order, so results are bit-identical for any thread count.
// Packing and the block products: attention_packing.h, attention_blocks.h.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_blocks.h"
#include "kernels/cpu/attention_packing.h"
#include "kernels/cpu/cpu_backend.h"

namespace loom::cpu {
namespace {

using attention_internal::AlignedBuffer;
using attention_internal::CheckAttentionShapes;
using attention_internal::CheckLike;
using attention_internal::ConvertRow;
using attention_internal::ExpShifted;
using attention_internal::kBlock;
using attention_internal::kWidth;
using attention_internal::LaneSum;
using attention_internal::LoadV;
using attention_internal::MakeProblem;
using attention_internal::Packed;
using attention_internal::Problem;
using attention_internal::QueryTasks;
using attention_internal::RoundUp;
using attention_internal::RowMax;
using attention_internal::RunTasks;
using attention_internal::ScaleRow;
using attention_internal::Sequence;
using attention_internal::SmallGemm;
using attention_internal::SortTasks;
using attention_internal::StoreRow;
using attention_internal::StoreV;
using attention_internal::Task;
using attention_internal::Vec;

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

}  // namespace

void CpuBackend::AttentionForward(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const AttentionParams& params, const Tensor& out,
                                  const Tensor& lse) {
  CheckAttentionShapes("AttentionForward", q, k, v, params);
  CheckLike("AttentionForward", "out", out, q.sizes(), q.dtype());
  CheckLike("AttentionForward", "lse", lse, {q.size(0), q.size(2), q.size(1)},
            StatDTypeOf(q.dtype()));
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

}  // namespace loom::cpu
