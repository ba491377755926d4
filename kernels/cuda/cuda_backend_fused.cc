// CudaBackend: matrix products, attention and the fused layers (RMSNorm,
// RoPE, SwiGLU, AdamW). Tensors become the launcher structs of gemm.h,
// attention.h, rmsnorm.h, rope.h, swiglu.h and adamw.h; layouts a launcher
// cannot take (overlapping rows, non-contiguous optimizer state) go through
// contiguous copies, as the CPU backend does.
#include <algorithm>
#include <string>
#include <vector>

#include "kernels/cuda/adamw.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_backend_util.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/swiglu.h"
#include "runtime/status.h"

#if !defined(LOOM_CUDA_EMULATION)
#include "kernels/cuda/kernel_select.h"
#endif

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

using backend_internal::Check;
using backend_internal::CheckOnDevice;
using backend_internal::In;
using backend_internal::LaunchScope;
using backend_internal::Out;
using backend_internal::Scratch;

std::string Name(DType dtype) { return std::string(DTypeName(dtype)); }

// The selectable implementations (kernel_select.h) exist on the GPU path only;
// the emulator always runs ours.
absl::Status RunGemm(const GemmProblem& p, cudaStream_t stream) {
#if defined(LOOM_CUDA_EMULATION)
  return LaunchGemm(p, stream);
#else
  return LaunchSelectedGemm(p, stream);
#endif
}
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

Tensor ContiguousCopy(CudaBackend& backend, const Tensor& t) {
  Tensor c = Tensor::Empty(t.sizes(), t.dtype(), t.device());
  backend.Copy(t, c);
  return c;
}

// One GEMM operand [batch, rows, cols] as the launcher takes it: a row stride
// of at least cols (rows may not overlap; such views are copied first).
struct GemmOperand {
  Tensor stored;
  int64_t ld = 0, batch_stride = 0;
};

GemmOperand MakeOperand(CudaBackend& backend, const Tensor& t) {
  const int64_t rows = t.size(1), cols = t.size(2);
  GemmOperand o{t};
  o.ld = rows <= 1 ? std::max<int64_t>(cols, 1) : t.stride(1);
  if (o.ld < cols) {
    o.stored = ContiguousCopy(backend, t);
    o.ld = cols;
  }
  o.batch_stride = t.size(0) == 1 ? 0 : o.stored.stride(0);
  return o;
}

void CheckGemmOperand(const char* name, const Tensor& t, const Tensor& out) {
  LOOM_CHECK(t.dim() == 3, "Gemm: %s must be 3-d [batch, rows, cols], got %s", name,
             t.ShapeString());
  LOOM_CHECK(t.dtype() == out.dtype(), "Gemm: %s is %s but out is %s", name, Name(t.dtype()),
             Name(out.dtype()));
  LOOM_CHECK(t.size(0) == 1 || t.size(0) == out.size(0),
             "Gemm: %s %s has batch %d; expected 1 or out's batch %d", name, t.ShapeString(),
             t.size(0), out.size(0));
  LOOM_CHECK(t.size(2) <= 1 || t.stride(2) == 1,
             "Gemm: %s %s needs stride 1 on its last dim, has %d", name, t.ShapeString(),
             t.stride(2));
}

BthStrides BthOf(const Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

void CheckBth(const char* op, const char* name, const Tensor& t, DimsRef sizes, DType dtype) {
  LOOM_CHECK(t.dim() == 4 && Dims(sizes.begin(), sizes.end()) == t.sizes() && t.dtype() == dtype &&
                 (t.size(3) <= 1 || t.stride(3) == 1),
             "%s: %s is %s %s, expected %s %s with a contiguous last dim", op, name,
             Name(t.dtype()), t.ShapeString(), Name(dtype), DimsString(sizes));
}

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

// ---- GEMM.

void CudaBackend::Gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
                       double beta, const Tensor& out) {
  const DType dt = out.dtype();
  LOOM_CHECK(IsFloating(dt),
             "Gemm: expected f32, f64, bf16 or f16 tensors, got %s (integer matrix products are "
             "not supported)",
             Name(dt));
  LOOM_CHECK(out.dim() == 3, "Gemm: out must be 3-d [batch, M, N], got %s", out.ShapeString());
  CheckGemmOperand("a", a, out);
  CheckGemmOperand("b", b, out);
  const int64_t batch = out.size(0), m = out.size(1), n = out.size(2);
  const int64_t am = trans_a ? a.size(2) : a.size(1), k = trans_a ? a.size(1) : a.size(2);
  const int64_t bk = trans_b ? b.size(2) : b.size(1), bn = trans_b ? b.size(1) : b.size(2);
  LOOM_CHECK(am == m && bk == k && bn == n, "Gemm: a %s%s @ b %s%s does not give out %s",
             a.ShapeString(), trans_a ? "^T" : "", b.ShapeString(), trans_b ? "^T" : "",
             out.ShapeString());
  LOOM_CHECK(out.size(2) <= 1 || out.stride(2) == 1, "Gemm: out %s needs stride 1 on its last dim",
             out.ShapeString());
  LOOM_CHECK(batch <= 1 || m * n == 0 || out.stride(0) != 0,
             "Gemm: out %s has batch stride 0 (overlapping outputs)", out.ShapeString());
  const LaunchScope scope("Gemm", {&a, &b, &out});
  if (batch == 0 || m == 0 || n == 0) return;
  if (k == 0) {  // empty sum: out = beta * out
    if (beta == 0) {
      Fill(out, 0.0);
    } else if (beta != 1) {
      Affine(out, beta, 0.0, out);
    }
    return;
  }
  if (m > 1 && out.stride(1) < n) {  // overlapping output rows: go through a copy
    Tensor tmp = Tensor::Empty(out.sizes(), dt, out.device());
    if (beta != 0) Copy(out, tmp);
    Gemm(a, trans_a, b, trans_b, alpha, beta, tmp);
    Copy(tmp, out);
    return;
  }
  const GemmOperand oa = MakeOperand(*this, a), ob = MakeOperand(*this, b);
  const GemmProblem p{.input = dt,
                      .output = dt,
                      .batch = batch,
                      .m = m,
                      .n = n,
                      .k = k,
                      .a = oa.stored.raw_data(),
                      .lda = oa.ld,
                      .batch_stride_a = oa.batch_stride,
                      .trans_a = trans_a,
                      .b = ob.stored.raw_data(),
                      .ldb = ob.ld,
                      .batch_stride_b = ob.batch_stride,
                      .trans_b = trans_b,
                      .out = out.raw_data(),
                      .ldo = m <= 1 ? n : out.stride(1),
                      .batch_stride_out = batch == 1 ? 0 : out.stride(0),
                      .alpha = float(alpha),
                      .beta = float(beta)};
  Check("Gemm", RunGemm(p, scope.stream()));
}

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

// ---- RMSNorm.

void CudaBackend::RmsNormForward(const Tensor& x, const Tensor& w, double eps, const Tensor& y,
                                 const Tensor& rstd) {
  LOOM_CHECK(x.dim() == 2 && x.size(1) > 0 && x.is_contiguous(),
             "RmsNorm: x must be a contiguous [N, D], got %s", x.ShapeString());
  LOOM_CHECK(w.dim() == 1 && w.size(0) == x.size(1) && w.dtype() == x.dtype() && w.is_contiguous(),
             "RmsNorm: weight %s %s for x %s %s", Name(w.dtype()), w.ShapeString(), Name(x.dtype()),
             x.ShapeString());
  LOOM_CHECK(y.sizes() == x.sizes() && y.dtype() == x.dtype() && y.is_contiguous(),
             "RmsNorm: y %s %s for x %s", Name(y.dtype()), y.ShapeString(), x.ShapeString());
  LOOM_CHECK(rstd.dim() == 1 && rstd.size(0) == x.size(0) &&
                 rstd.dtype() == StatDTypeOf(x.dtype()) && rstd.is_contiguous(),
             "RmsNorm: rstd must be a contiguous %s [%d], got %s %s", Name(StatDTypeOf(x.dtype())),
             x.size(0), Name(rstd.dtype()), rstd.ShapeString());
  const LaunchScope scope("RmsNorm", {&x, &w, &y, &rstd});
  if (x.size(0) == 0) return;
  const RmsNormForwardArgs args{.dtype = x.dtype(),
                                .rows = x.size(0),
                                .dim = x.size(1),
                                .x = x.raw_data(),
                                .x_stride = x.stride(0),
                                .weight = w.raw_data(),
                                .eps = eps,
                                .y = y.raw_data(),
                                .y_stride = y.stride(0),
                                .rstd = rstd.raw_data()};
  Check("RmsNorm", LaunchRmsNormForward(args, scope.stream()));
}

void CudaBackend::RmsNormBackward(const Tensor& gy, const Tensor& x, const Tensor& w,
                                  const Tensor& rstd, const Tensor& gx, const Tensor& gw) {
  LOOM_CHECK(x.dim() == 2 && x.size(1) > 0 && x.is_contiguous(),
             "RmsNormBackward: x must be a contiguous [N, D], got %s", x.ShapeString());
  for (const Tensor* t : {&gy, &gx}) {
    LOOM_CHECK(t->sizes() == x.sizes() && t->dtype() == x.dtype() && t->is_contiguous(),
               "RmsNormBackward: %s %s for x %s %s", Name(t->dtype()), t->ShapeString(),
               Name(x.dtype()), x.ShapeString());
  }
  for (const Tensor* t : {&w, &gw}) {
    LOOM_CHECK(
        t->dim() == 1 && t->size(0) == x.size(1) && t->dtype() == x.dtype() && t->is_contiguous(),
        "RmsNormBackward: weight/gw %s %s for x %s %s", Name(t->dtype()), t->ShapeString(),
        Name(x.dtype()), x.ShapeString());
  }
  LOOM_CHECK(rstd.dim() == 1 && rstd.size(0) == x.size(0) &&
                 rstd.dtype() == StatDTypeOf(x.dtype()) && rstd.is_contiguous(),
             "RmsNormBackward: rstd must be a contiguous %s [%d], got %s %s",
             Name(StatDTypeOf(x.dtype())), x.size(0), Name(rstd.dtype()), rstd.ShapeString());
  const LaunchScope scope("RmsNormBackward", {&gy, &x, &w, &rstd, &gx, &gw});
  if (x.size(0) == 0) {  // no rows: the weight gradient is 0
    Fill(gw, 0.0);
    return;
  }
  const Tensor workspace =
      Scratch(scope.device(), RmsNormBackwardWorkspaceBytes(x.dtype(), x.size(0), x.size(1)));
  const RmsNormBackwardArgs args{.dtype = x.dtype(),
                                 .rows = x.size(0),
                                 .dim = x.size(1),
                                 .gy = gy.raw_data(),
                                 .gy_stride = gy.stride(0),
                                 .x = x.raw_data(),
                                 .x_stride = x.stride(0),
                                 .weight = w.raw_data(),
                                 .rstd = rstd.raw_data(),
                                 .gx = gx.raw_data(),
                                 .gx_stride = gx.stride(0),
                                 .gw = gw.raw_data(),
                                 .workspace = workspace.raw_data()};
  Check("RmsNormBackward", LaunchRmsNormBackward(args, scope.stream()));
}

// ---- RoPE.

void CudaBackend::Rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                       bool inverse, const Tensor& out) {
  LOOM_CHECK(x.dim() == 4 && x.size(3) % 2 == 0 && (x.size(3) <= 1 || x.stride(3) == 1),
             "Rope: x must be a [B, T, H, E] with E even and a contiguous last dim, got %s",
             x.ShapeString());
  CheckBth("Rope", "out", out, x.sizes(), x.dtype());
  const int64_t b = x.size(0), t = x.size(1);
  LOOM_CHECK(positions.dtype() == DType::kI64 && positions.dim() == 2 && positions.size(0) == b &&
                 positions.size(1) == t && positions.is_contiguous(),
             "Rope: positions must be a contiguous i64 [%d, %d], got %s %s", b, t,
             Name(positions.dtype()), positions.ShapeString());
  const DType freq_dtype = x.dtype() == DType::kF64 ? DType::kF64 : DType::kF32;
  LOOM_CHECK(inv_freq.dtype() == freq_dtype && inv_freq.dim() == 1 &&
                 inv_freq.size(0) == x.size(3) / 2 && inv_freq.is_contiguous(),
             "Rope: inv_freq must be a contiguous %s [%d], got %s %s", Name(freq_dtype),
             x.size(3) / 2, Name(inv_freq.dtype()), inv_freq.ShapeString());
  const LaunchScope scope("Rope", {&x, &positions, &inv_freq, &out});
  if (x.numel() == 0) return;
  const RopeArgs args{.dtype = x.dtype(),
                      .batch = b,
                      .seqlen = t,
                      .heads = x.size(2),
                      .head_dim = x.size(3),
                      .x = x.raw_data(),
                      .x_strides = {x.stride(0), x.stride(1), x.stride(2)},
                      .out = out.raw_data(),
                      .out_strides = {out.stride(0), out.stride(1), out.stride(2)},
                      .positions = positions.data<int64_t>(),
                      .inv_freq = inv_freq.raw_data(),
                      .inverse = inverse};
  Check("Rope", LaunchRope(args, scope.stream()));
}

// ---- SwiGLU: any rank, seen as [rows, last dim] (contiguous rows of one width).

namespace {

void CheckSwiGluOperand(const char* op, const char* name, const Tensor& t, const Tensor& gate) {
  LOOM_CHECK(t.sizes() == gate.sizes() && t.dtype() == gate.dtype() && t.is_contiguous(),
             "%s: %s is %s %s, expected a contiguous %s %s like gate", op, name, Name(t.dtype()),
             t.ShapeString(), Name(gate.dtype()), gate.ShapeString());
}

int64_t LastDim(const Tensor& t) { return t.dim() == 0 ? 1 : t.size(-1); }

}  // namespace

void CudaBackend::SwiGluForward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  CheckSwiGluOperand("SwiGlu", "gate", gate, gate);
  CheckSwiGluOperand("SwiGlu", "up", up, gate);
  CheckSwiGluOperand("SwiGlu", "out", out, gate);
  const LaunchScope scope("SwiGlu", {&gate, &up, &out});
  if (gate.numel() == 0) return;
  const int64_t cols = LastDim(gate), rows = gate.numel() / cols;
  const SwiGluArgs args{.dtype = gate.dtype(),
                        .rows = rows,
                        .cols = cols,
                        .gate = gate.raw_data(),
                        .gate_stride = cols,
                        .up = up.raw_data(),
                        .up_stride = cols,
                        .out = out.raw_data(),
                        .out_stride = cols};
  Check("SwiGlu", LaunchSwiGluForward(args, scope.stream()));
}

void CudaBackend::SwiGluBackward(const Tensor& gate, const Tensor& up, const Tensor& gout,
                                 const Tensor& ggate, const Tensor& gup) {
  CheckSwiGluOperand("SwiGluBackward", "gate", gate, gate);
  CheckSwiGluOperand("SwiGluBackward", "up", up, gate);
  CheckSwiGluOperand("SwiGluBackward", "gout", gout, gate);
  CheckSwiGluOperand("SwiGluBackward", "ggate", ggate, gate);
  CheckSwiGluOperand("SwiGluBackward", "gup", gup, gate);
  const LaunchScope scope("SwiGluBackward", {&gate, &up, &gout, &ggate, &gup});
  if (gate.numel() == 0) return;
  const int64_t cols = LastDim(gate), rows = gate.numel() / cols;
  const SwiGluBackwardArgs args{.dtype = gate.dtype(),
                                .rows = rows,
                                .cols = cols,
                                .gate = gate.raw_data(),
                                .gate_stride = cols,
                                .up = up.raw_data(),
                                .up_stride = cols,
                                .gout = gout.raw_data(),
                                .gout_stride = cols,
                                .ggate = ggate.raw_data(),
                                .ggate_stride = cols,
                                .gup = gup.raw_data(),
                                .gup_stride = cols};
  Check("SwiGluBackward", LaunchSwiGluBackward(args, scope.stream()));
}

// ---- AdamW.

void CudaBackend::AdamW(absl::Span<const Tensor> params, absl::Span<const Tensor> grads,
                        absl::Span<const Tensor> exp_avgs, absl::Span<const Tensor> exp_avg_sqs,
                        const AdamWParams& p) {
  const size_t n = params.size();
  LOOM_CHECK(grads.size() == n && exp_avgs.size() == n && exp_avg_sqs.size() == n,
             "AdamW: %d params but %d grads, %d exp_avgs, %d exp_avg_sqs", n, grads.size(),
             exp_avgs.size(), exp_avg_sqs.size());
  LOOM_CHECK(p.step >= 1, "AdamW: step must be >= 1 (1-based, after increment), got %d", p.step);
  if (n == 0) return;
  std::vector<AdamWTensor> tensors;
  // Non-contiguous tensors are updated through contiguous copies, written back after.
  struct WriteBack {
    Tensor dst, src;
  };
  std::vector<WriteBack> write_back;
  std::vector<Tensor> keep_alive;
  auto contiguous = [&](const Tensor& t, bool updated) {
    if (t.is_contiguous()) return t;
    Tensor c = ContiguousCopy(*this, t);
    if (updated) write_back.push_back({t, c});
    keep_alive.push_back(c);
    return c;
  };
  const LaunchScope scope("AdamW", {&params[0]});
  for (size_t i = 0; i < n; ++i) {
    const Tensor& param = params[i];
    LOOM_CHECK(IsFloating(param.dtype()) && IsFloating(grads[i].dtype()),
               "AdamW: tensor %d: param %s and grad %s must be floating", i, Name(param.dtype()),
               Name(grads[i].dtype()));
    const DType state_dtype = param.dtype() == DType::kF64 ? DType::kF64 : DType::kF32;
    LOOM_CHECK(exp_avgs[i].dtype() == state_dtype && exp_avg_sqs[i].dtype() == state_dtype,
               "AdamW: tensor %d: %s param needs %s state, got exp_avg %s, exp_avg_sq %s", i,
               Name(param.dtype()), Name(state_dtype), Name(exp_avgs[i].dtype()),
               Name(exp_avg_sqs[i].dtype()));
    LOOM_CHECK(grads[i].sizes() == param.sizes() && exp_avgs[i].sizes() == param.sizes() &&
                   exp_avg_sqs[i].sizes() == param.sizes(),
               "AdamW: tensor %d: param %s, grad %s, exp_avg %s, exp_avg_sq %s must match", i,
               param.ShapeString(), grads[i].ShapeString(), exp_avgs[i].ShapeString(),
               exp_avg_sqs[i].ShapeString());
    for (const Tensor* t : {&param, &grads[i], &exp_avgs[i], &exp_avg_sqs[i]}) {
      CheckOnDevice("AdamW", scope.device(), *t);
    }
    if (param.numel() == 0) continue;
    tensors.push_back({.param_dtype = param.dtype(),
                       .grad_dtype = grads[i].dtype(),
                       .param = contiguous(param, true).raw_data(),
                       .grad = contiguous(grads[i], false).raw_data(),
                       .exp_avg = contiguous(exp_avgs[i], true).raw_data(),
                       .exp_avg_sq = contiguous(exp_avg_sqs[i], true).raw_data(),
                       .numel = param.numel()});
  }
  const AdamWStep step{.lr = p.lr,
                       .beta1 = p.beta1,
                       .beta2 = p.beta2,
                       .eps = p.eps,
                       .weight_decay = p.weight_decay,
                       .step = p.step};
  Check("AdamW", LaunchAdamW(tensors, step, scope.stream()));
  for (const WriteBack& w : write_back) Copy(w.src, w.dst);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
