// CudaBackend: matrix products and the fused layers (RMSNorm, RoPE, SwiGLU,
// AdamW; attention is in cuda_backend_attention.cc). Tensors become the
// launcher structs of gemm.h, rmsnorm.h, rope.h, swiglu.h and adamw.h; layouts
// a launcher cannot take (overlapping rows, non-contiguous optimizer state) go
// through contiguous copies, as the CPU backend does.
#include <algorithm>
#include <string>
#include <vector>

#include "kernels/cuda/adamw.h"
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
using backend_internal::CheckBth;
using backend_internal::CheckOnDevice;
using backend_internal::ContiguousCopy;
using backend_internal::In;
using backend_internal::LaunchScope;
using backend_internal::Out;
using backend_internal::Scratch;

std::string Name(DType dtype) { return std::string(DTypeName(dtype)); }

// The selectable implementation (kernel_select.h) exists on the GPU path only;
// the emulator always runs ours.
absl::Status RunGemm(const GemmProblem& p, cudaStream_t stream) {
#if defined(LOOM_CUDA_EMULATION)
  return LaunchGemm(p, stream);
#else
  return LaunchSelectedGemm(p, stream);
#endif
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
