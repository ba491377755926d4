// CudaBackend: attention forward and backward. Dense batches go to the
// launchers as they are; packed rows (cu_seqlens, or position ids turned into
// them by the op) become one batch of B*T tokens, whose log-sum-exp the
// kernels lay out as [H, B*T] and the Backend as [B, H, T] (reordered here).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_backend_util.h"
#include "runtime/status.h"

#if !defined(LOOM_CUDA_EMULATION)
#include "kernels/cuda/kernel_select.h"
#endif

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

using backend_internal::Check;
using backend_internal::CheckBth;
using backend_internal::ContiguousCopy;
using backend_internal::LaunchScope;
using backend_internal::Scratch;

std::string Name(DType dtype) { return std::string(DTypeName(dtype)); }

// The selectable implementations (kernel_select.h) exist on the GPU path only;
// the emulator always runs ours.
absl::Status RunAttentionForward(const AttentionProblem& p, cudaStream_t stream) {
#if defined(LOOM_CUDA_EMULATION)
  return LaunchAttentionForward(p, stream);
#else
  return LaunchSelectedAttentionForward(p, stream);
#endif
}
size_t AttentionWorkspace(const AttentionProblem& p) {
#if defined(LOOM_CUDA_EMULATION)
  return AttentionBackwardWorkspaceBytes(p);
#else
  return SelectedAttentionBackwardWorkspaceBytes(p);
#endif
}
absl::Status RunAttentionBackward(const AttentionBackwardProblem& p, cudaStream_t stream) {
#if defined(LOOM_CUDA_EMULATION)
  return LaunchAttentionBackward(p, stream);
#else
  return LaunchSelectedAttentionBackward(p, stream);
#endif
}

BthStrides BthOf(const Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

// The sequence layout of an attention call: dense batches, or packed rows
// (varlen) seen by the kernels as one batch of B*T tokens.
struct AttentionLayout {
  bool varlen = false;
  int64_t batch = 0, tokens_q = 0, tokens_k = 0, num_seqs = 0, max_q = 0, max_k = 0;
};

int64_t MaxSeqlen(const std::vector<int64_t>& cu) {
  int64_t m = 0;
  for (size_t i = 1; i < cu.size(); ++i) m = std::max(m, cu[i] - cu[i - 1]);
  return m;
}

AttentionLayout LayoutOf(const Tensor& q, const Tensor& k, const AttentionParams& params) {
  AttentionLayout l;
  l.varlen = params.cu_seqlens_q.defined();
  if (!l.varlen) {
    l.batch = q.size(0), l.tokens_q = q.size(1), l.tokens_k = k.size(1);
    return l;
  }
  const Tensor& cu_k = params.cu_seqlens_k.defined() ? params.cu_seqlens_k : params.cu_seqlens_q;
  LOOM_CHECK(params.cu_seqlens_q.dtype() == DType::kI32 && cu_k.dtype() == DType::kI32 &&
                 params.cu_seqlens_q.is_contiguous() && cu_k.is_contiguous() &&
                 params.cu_seqlens_q.sizes() == cu_k.sizes(),
             "Attention: cu_seqlens must be contiguous i32 [num_seqs + 1] of one size");
  // The grid needs the longest sequence: a small read-back of the boundaries.
  const std::vector<int64_t> cq = params.cu_seqlens_q.ToVector<int64_t>();
  const std::vector<int64_t> ck = cu_k.ToVector<int64_t>();
  l.batch = 1;
  l.tokens_q = q.size(0) * q.size(1);
  l.tokens_k = k.size(0) * k.size(1);
  l.num_seqs = int64_t(cq.size()) - 1;
  l.max_q = MaxSeqlen(cq);
  l.max_k = MaxSeqlen(ck);
  return l;
}

// Strides of a [B, T, ...] tensor seen as [1, B*T, ...]; requires the batch
// rows to follow each other at the token stride (true of contiguous tensors).
BthStrides FlattenedBth(const Tensor& t) {
  LOOM_CHECK(t.size(0) <= 1 || t.stride(0) == t.size(1) * t.stride(1),
             "Attention: packed rows need batch stride = T * token stride, got %s with strides "
             "%s",
             t.ShapeString(), DimsString(t.strides()));
  return {0, t.stride(1), t.stride(2)};
}

AttentionProblem MakeAttentionProblem(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const AttentionParams& params, const AttentionLayout& l) {
  AttentionProblem p{.dtype = q.dtype(),
                     .batch = l.batch,
                     .seqlen_q = l.tokens_q,
                     .seqlen_k = l.tokens_k,
                     .heads = q.size(2),
                     .kv_heads = k.size(2),
                     .head_dim = q.size(3),
                     .q = q.raw_data(),
                     .k = k.raw_data(),
                     .v = v.raw_data(),
                     .causal = params.causal,
                     .scale = params.scale};
  if (l.varlen) {
    p.q_strides = FlattenedBth(q), p.k_strides = FlattenedBth(k), p.v_strides = FlattenedBth(v);
    const Tensor& cu_k = params.cu_seqlens_k.defined() ? params.cu_seqlens_k : params.cu_seqlens_q;
    p.cu_seqlens_q = params.cu_seqlens_q.data<int32_t>();
    p.cu_seqlens_k = cu_k.data<int32_t>();
    p.num_seqs = l.num_seqs;
    p.max_seqlen_q = l.max_q;
    p.max_seqlen_k = l.max_k;
  } else {
    p.q_strides = BthOf(q), p.k_strides = BthOf(k), p.v_strides = BthOf(v);
  }
  return p;
}

void SetOutput(AttentionProblem& p, const Tensor& out, const AttentionLayout& l) {
  p.out = out.raw_data();
  p.out_strides = l.varlen ? FlattenedBth(out) : BthOf(out);
}

// The kernels' lse is [batch, H, tokens]: with packed rows (batch 1, B*T
// tokens) that is [H, B*T], not the Backend's [B, H, T]. `b_h_t` views a
// [1, H, B*T] buffer as [B, H, T].
Tensor KernelLseAsBht(const Tensor& kernel_lse, int64_t b, int64_t h, int64_t t) {
  return Tensor::FromStorage(kernel_lse.storage(), kernel_lse.offset(), {b, h, t}, {t, b * t, 1},
                             kernel_lse.dtype());
}

void CheckLse(const char* op, const Tensor& lse, const Tensor& q) {
  const int64_t b = q.size(0), t = q.size(1), h = q.size(2);
  LOOM_CHECK(lse.sizes() == Dims({b, h, t}) && lse.dtype() == StatDTypeOf(q.dtype()) &&
                 lse.is_contiguous(),
             "%s: lse must be a contiguous %s [%d, %d, %d], got %s %s", op,
             Name(StatDTypeOf(q.dtype())), b, h, t, Name(lse.dtype()), lse.ShapeString());
}

// `t` itself when contiguous, else a contiguous copy (inputs), or a fresh
// contiguous tensor to copy back from (outputs).
Tensor Dense(CudaBackend& backend, const Tensor& t) {
  return t.is_contiguous() ? t : ContiguousCopy(backend, t);
}
Tensor DenseOutput(const Tensor& t) {
  return t.is_contiguous() ? t : Tensor::Empty(t.sizes(), t.dtype(), t.device());
}

void CheckAttention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  LOOM_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.sizes() == v.sizes() &&
                 q.size(0) == k.size(0) && q.size(3) == k.size(3) && k.size(2) > 0 &&
                 q.size(2) % std::max<int64_t>(k.size(2), 1) == 0,
             "%s: q %s, k %s, v %s are not [B, T, H, E], [B, S, G, E] with H %% G == 0", op,
             q.ShapeString(), k.ShapeString(), v.ShapeString());
  LOOM_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), "%s: dtypes %s, %s, %s", op,
             Name(q.dtype()), Name(k.dtype()), Name(v.dtype()));
}

}  // namespace

// ---- Attention.

void CudaBackend::AttentionForward(const Tensor& q, const Tensor& k, const Tensor& v,
                                   const AttentionParams& params, const Tensor& out,
                                   const Tensor& lse) {
  CheckAttention("AttentionForward", q, k, v);
  CheckBth("AttentionForward", "out", out, q.sizes(), q.dtype());
  const int64_t b = q.size(0), t = q.size(1), h = q.size(2);
  CheckLse("AttentionForward", lse, q);
  const LaunchScope scope("AttentionForward",
                          {&q, &k, &v, &out, &lse, &params.cu_seqlens_q, &params.cu_seqlens_k});
  if (q.numel() == 0) return;
  const AttentionLayout l = LayoutOf(q, k, params);
  // Packed rows need one token stride across batch rows: dense tensors.
  const Tensor qd = l.varlen ? Dense(*this, q) : q, kd = l.varlen ? Dense(*this, k) : k,
               vd = l.varlen ? Dense(*this, v) : v;
  const Tensor od = l.varlen ? DenseOutput(out) : out;
  AttentionProblem p = MakeAttentionProblem(qd, kd, vd, params, l);
  SetOutput(p, od, l);
  // Packed rows of several batch rows: the kernel writes [H, B*T]; reorder after.
  const bool reorder_lse = l.varlen && b > 1;
  const Tensor kernel_lse =
      reorder_lse ? Tensor::Empty({1, h, b * t}, lse.dtype(), lse.device()) : lse;
  p.lse = kernel_lse.raw_data();
  Check("AttentionForward", RunAttentionForward(p, scope.stream()));
  if (reorder_lse) Copy(KernelLseAsBht(kernel_lse, b, h, t), lse);
  if (!od.is_same(out)) Copy(od, out);
}

void CudaBackend::AttentionBackward(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& out, const Tensor& lse, const Tensor& gout,
                                    const AttentionParams& params, const Tensor& gq,
                                    const Tensor& gk, const Tensor& gv) {
  CheckAttention("AttentionBackward", q, k, v);
  CheckBth("AttentionBackward", "out", out, q.sizes(), q.dtype());
  CheckBth("AttentionBackward", "gout", gout, q.sizes(), q.dtype());
  CheckBth("AttentionBackward", "gq", gq, q.sizes(), q.dtype());
  CheckBth("AttentionBackward", "gk", gk, k.sizes(), k.dtype());
  CheckBth("AttentionBackward", "gv", gv, v.sizes(), v.dtype());
  CheckLse("AttentionBackward", lse, q);
  const int64_t b = q.size(0), t = q.size(1), h = q.size(2);
  const LaunchScope scope("AttentionBackward", {&q, &k, &v, &out, &lse, &gout, &gq, &gk, &gv,
                                                &params.cu_seqlens_q, &params.cu_seqlens_k});
  if (q.numel() == 0 && k.numel() == 0) return;
  const AttentionLayout l = LayoutOf(q, k, params);
  // The kernels read each gradient with the strides of its input: run on
  // dense tensors throughout (the ops pass dense ones: no copies then).
  const Tensor qd = Dense(*this, q), kd = Dense(*this, k), vd = Dense(*this, v),
               od = Dense(*this, out), god = Dense(*this, gout);
  const Tensor gqd = DenseOutput(gq), gkd = DenseOutput(gk), gvd = DenseOutput(gv);
  AttentionBackwardProblem p{.fwd = MakeAttentionProblem(qd, kd, vd, params, l),
                             .gout = god.raw_data(),
                             .gq = gqd.raw_data(),
                             .gk = gkd.raw_data(),
                             .gv = gvd.raw_data(),
                             .deterministic = options_.deterministic_attention};
  SetOutput(p.fwd, od, l);
  Tensor kernel_lse = lse;
  if (l.varlen && b > 1) {  // the kernels read [H, B*T] (see AttentionForward)
    kernel_lse = Tensor::Empty({1, h, b * t}, lse.dtype(), lse.device());
    Copy(lse, KernelLseAsBht(kernel_lse, b, h, t));
  }
  p.fwd.lse = kernel_lse.raw_data();
  const Tensor workspace = Scratch(scope.device(), AttentionWorkspace(p.fwd));
  p.workspace = workspace.raw_data();
  Check("AttentionBackward", RunAttentionBackward(p, scope.stream()));
  for (const auto& [dense, dst] : {std::pair{gqd, gq}, std::pair{gkd, gk}, std::pair{gvd, gv}}) {
    if (!dense.is_same(dst)) Copy(dense, dst);
  }
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
