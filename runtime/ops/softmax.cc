#include "runtime/ops/softmax.h"

#include "runtime/autograd/function.h"
#include "runtime/backend.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

using autograd::BackwardContext;
using autograd::RecordFunction;
using Grads = std::vector<Tensor>;

// A contiguous tensor viewed as [rows, last dim].
Tensor Rows(const Tensor& t) {
  const int64_t d = t.dim() == 0 ? 1 : t.size(-1);
  return Reshape(t, {d == 0 ? 0 : t.numel() / d, d});
}

// Softmax over the last dim.
Tensor LastDim(const Tensor& x, bool log) {
  const char* name = log ? "LogSoftmax" : "Softmax";
  LOOM_CHECK(IsFloating(x.dtype()), "%s: expected a floating tensor, got %s", name,
             std::string(DTypeName(x.dtype())));
  Tensor y = Tensor::Empty(x.sizes(), x.dtype(), x.device());
  if (y.numel() > 0) GetBackend(x.device()).Softmax(Rows(Contiguous(x.Detach())), log, Rows(y));
  if (autograd::NeedsGrad({&x})) {
    RecordFunction(log ? "LogSoftmaxBackward" : "SoftmaxBackward", {x}, {y},
                   [y = y.Detach(), log](BackwardContext&, Grads g) -> Grads {
                     Tensor gx = Tensor::Empty(y.sizes(), y.dtype(), y.device());
                     if (gx.numel() == 0) return {gx};
                     Tensor gy = Contiguous(Cast(g[0], y.dtype()));
                     GetBackend(y.device()).SoftmaxBackward(Rows(y), Rows(gy), log, Rows(gx));
                     return {gx};
                   });
  }
  return y;
}

Tensor AlongDim(const Tensor& x, int dim, bool log) {
  if (x.dim() == 0) {
    LOOM_CHECK(dim == 0 || dim == -1, "%s: dim %d for a 0-d tensor", log ? "LogSoftmax" : "Softmax",
               dim);
    return Reshape(LastDim(Reshape(x, {1}), log), {});
  }
  const int d = x.WrapDim(dim);
  if (d == x.dim() - 1) return LastDim(x, log);
  // Move `dim` last, normalise, move it back (differentiable views and copies).
  Tensor moved = Contiguous(Transpose(x, d, -1));
  return Contiguous(Transpose(LastDim(moved, log), d, -1));
}

}  // namespace

Tensor Softmax(const Tensor& x, int dim) { return AlongDim(x, dim, false); }
Tensor LogSoftmax(const Tensor& x, int dim) { return AlongDim(x, dim, true); }

}  // namespace loom
