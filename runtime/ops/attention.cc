#include "runtime/ops/attention.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "runtime/autograd/function.h"
#include "runtime/backend.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

using autograd::BackwardContext;
using autograd::RecordFunction;
using Grads = std::vector<Tensor>;

constexpr char kOp[] = "ScaledDotProductAttention";

std::string Name(DType dtype) { return std::string(DTypeName(dtype)); }

void CheckQkv(const Tensor& q, const Tensor& k, const Tensor& v) {
  LOOM_CHECK(q.defined() && k.defined() && v.defined(), "%s: q, k and v must be defined", kOp);
  LOOM_CHECK(IsFloating(q.dtype()) && k.dtype() == q.dtype() && v.dtype() == q.dtype(),
             "%s: q, k, v must share one floating dtype, got %s, %s, %s", kOp, Name(q.dtype()),
             Name(k.dtype()), Name(v.dtype()));
  LOOM_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
             "%s: expected q [B, T, H, E] and k, v [B, S, G, E], got q %s, k %s, v %s", kOp,
             q.ShapeString(), k.ShapeString(), v.ShapeString());
  LOOM_CHECK(k.sizes() == v.sizes(), "%s: k %s and v %s must have one shape [B, S, G, E]", kOp,
             k.ShapeString(), v.ShapeString());
  LOOM_CHECK(k.size(0) == q.size(0), "%s: batch sizes differ: q %s, k %s", kOp, q.ShapeString(),
             k.ShapeString());
  LOOM_CHECK(q.size(3) > 0 && k.size(3) == q.size(3),
             "%s: head dims must match and be > 0: q %s, k %s", kOp, q.ShapeString(),
             k.ShapeString());
  LOOM_CHECK(k.size(2) > 0 && q.size(2) % k.size(2) == 0,
             "%s: query heads H = %d must be a multiple of kv heads G = %d (q %s, k %s)", kOp,
             q.size(2), k.size(2), q.ShapeString(), k.ShapeString());
  LOOM_CHECK(k.device() == q.device() && v.device() == q.device(), "%s: q on %s, k on %s, v on %s",
             kOp, q.device().ToString(), k.device().ToString(), v.device().ToString());
}

// Checks cu_seqlens `name` over `rows` rows of `row_len` tokens; returns its
// number of sequences.
int64_t CheckCuSeqlens(const char* name, const Tensor& cu, int64_t rows, int64_t row_len,
                       Device device) {
  LOOM_CHECK(cu.dtype() == DType::kI32, "%s: %s must be i32, got %s", kOp, name, Name(cu.dtype()));
  LOOM_CHECK(cu.dim() == 1 && cu.size(0) >= 1, "%s: %s must be 1-D [num_seqs + 1], got %s", kOp,
             name, cu.ShapeString());
  LOOM_CHECK(cu.device() == device, "%s: %s on %s, q on %s", kOp, name, cu.device().ToString(),
             device.ToString());
  const std::vector<int64_t> b = cu.ToVector<int64_t>();
  const int64_t n = int64_t(b.size()) - 1;
  LOOM_CHECK(b[0] == 0, "%s: %s must start at 0, got %d", kOp, name, b[0]);
  for (int64_t i = 0; i < n; ++i) {
    LOOM_CHECK(b[i + 1] >= b[i], "%s: %s must be non-decreasing, got [%d] = %d > [%d] = %d", kOp,
               name, i, b[i], i + 1, b[i + 1]);
  }
  LOOM_CHECK(b[n] == rows * row_len, "%s: %s must end at %d (%d rows of %d tokens), got %d", kOp,
             name, rows * row_len, rows, row_len, b[n]);
  for (int64_t i = 0; i < n; ++i) {
    LOOM_CHECK(b[i + 1] == b[i] || b[i] / row_len == (b[i + 1] - 1) / row_len,
               "%s: %s sequence %d spans tokens [%d, %d), crossing a boundary between rows of %d "
               "tokens",
               kOp, name, i, b[i], b[i + 1], row_len);
  }
  return n;
}

// Fills params.cu_seqlens_{q,k} from the options, validated.
void ResolveSequences(const Tensor& q, const Tensor& k, const AttentionOptions& o,
                      AttentionParams& params) {
  const int64_t batch = q.size(0), t = q.size(1), s = k.size(1);
  if (o.position_ids.defined()) {
    LOOM_CHECK(!o.cu_seqlens_q.defined() && !o.cu_seqlens_k.defined(),
               "%s: give either position_ids or cu_seqlens, not both", kOp);
    LOOM_CHECK(t == s, "%s: position_ids need T == S (self-attention), got q %s, k %s", kOp,
               q.ShapeString(), k.ShapeString());
    LOOM_CHECK(
        o.position_ids.dim() == 2 && o.position_ids.size(0) == batch && o.position_ids.size(1) == t,
        "%s: position_ids must be [B, T] = [%d, %d], got %s", kOp, batch, t,
        o.position_ids.ShapeString());
    LOOM_CHECK(o.position_ids.device() == q.device(), "%s: position_ids on %s, q on %s", kOp,
               o.position_ids.device().ToString(), q.device().ToString());
    params.cu_seqlens_q = CuSeqlensFromPositionIds(o.position_ids);
    params.cu_seqlens_k = params.cu_seqlens_q;
    return;
  }
  if (!o.cu_seqlens_q.defined()) {
    LOOM_CHECK(!o.cu_seqlens_k.defined(), "%s: cu_seqlens_k given without cu_seqlens_q", kOp);
    return;
  }
  const Tensor& cu_k = o.cu_seqlens_k.defined() ? o.cu_seqlens_k : o.cu_seqlens_q;
  const int64_t nq = CheckCuSeqlens("cu_seqlens_q", o.cu_seqlens_q, batch, t, q.device());
  const int64_t nk =
      CheckCuSeqlens(o.cu_seqlens_k.defined() ? "cu_seqlens_k" : "cu_seqlens_q (for keys)", cu_k,
                     batch, s, q.device());
  LOOM_CHECK(nq == nk, "%s: cu_seqlens_q has %d sequences but cu_seqlens_k has %d", kOp, nq, nk);
  params.cu_seqlens_q = Contiguous(o.cu_seqlens_q.Detach());
  params.cu_seqlens_k = Contiguous(cu_k.Detach());
}

}  // namespace

Tensor CuSeqlensFromPositionIds(const Tensor& position_ids) {
  LOOM_CHECK(
      position_ids.defined() && position_ids.dtype() == DType::kI64 && position_ids.dim() == 2,
      "CuSeqlensFromPositionIds: position_ids must be i64 [B, T], got %s %s",
      position_ids.defined() ? Name(position_ids.dtype()) : std::string("undefined"),
      position_ids.defined() ? position_ids.ShapeString() : std::string());
  const int64_t batch = position_ids.size(0), t = position_ids.size(1);
  LOOM_CHECK(batch * t <= std::numeric_limits<int32_t>::max(),
             "CuSeqlensFromPositionIds: %d tokens do not fit i32 boundaries", batch * t);
  const std::vector<int64_t> pos = position_ids.ToVector<int64_t>();
  std::vector<int32_t> cu;
  for (int64_t r = 0; r < batch; ++r) {
    for (int64_t i = 0; i < t; ++i) {
      if (i == 0 || pos[size_t(r * t + i)] == 0) cu.push_back(int32_t(r * t + i));
    }
  }
  cu.push_back(int32_t(batch * t));
  Tensor result = Tensor::FromVector(cu, {int64_t(cu.size())});
  if (position_ids.device() != result.device()) {
    absl::StatusOr<Tensor> moved = result.CopyTo(position_ids.device());
    LOOM_CHECK_OK(moved.status());
    result = *moved;
  }
  return result;
}

Tensor ScaledDotProductAttention(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const AttentionOptions& options) {
  CheckQkv(q, k, v);
  LOOM_CHECK(std::isfinite(options.scale), "%s: scale must be finite, got %g", kOp, options.scale);
  AttentionParams params;
  params.causal = options.causal;
  params.scale = options.scale != 0 ? options.scale : 1.0 / std::sqrt(double(q.size(3)));
  ResolveSequences(q, k, options, params);

  Tensor qc = Contiguous(q.Detach()), kc = Contiguous(k.Detach()), vc = Contiguous(v.Detach());
  Tensor out = Tensor::Empty(q.sizes(), q.dtype(), q.device());
  Tensor lse = Tensor::Empty({q.size(0), q.size(2), q.size(1)}, StatDTypeOf(q.dtype()), q.device());
  GetBackend(q.device()).AttentionForward(qc, kc, vc, params, out, lse);
  if (autograd::NeedsGrad({&q, &k, &v})) {
    RecordFunction("ScaledDotProductAttentionBackward", {q, k, v}, {out},
                   [qc, kc, vc, out_saved = out.Detach(), lse, params](BackwardContext& ctx,
                                                                       Grads g) -> Grads {
                     Tensor gout = Contiguous(Cast(g[0], qc.dtype()));
                     Tensor gq = Tensor::Empty(qc.sizes(), qc.dtype(), qc.device());
                     Tensor gk = Tensor::Empty(kc.sizes(), kc.dtype(), kc.device());
                     Tensor gv = Tensor::Empty(vc.sizes(), vc.dtype(), vc.device());
                     GetBackend(qc.device())
                         .AttentionBackward(qc, kc, vc, out_saved, lse, gout, params, gq, gk, gv);
                     return {ctx.needs_input_grad(0) ? gq : Tensor(),
                             ctx.needs_input_grad(1) ? gk : Tensor(),
                             ctx.needs_input_grad(2) ? gv : Tensor()};
                   });
  }
  return out;
}

}  // namespace loom
