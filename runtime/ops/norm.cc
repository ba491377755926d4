#include "runtime/ops/norm.h"

#include "runtime/autograd/function.h"
#include "runtime/backend.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

using autograd::BackwardContext;
using autograd::RecordFunction;
using Grads = std::vector<Tensor>;

}  // namespace

Tensor RmsNorm(const Tensor& x, const Tensor& weight, double eps) {
  LOOM_CHECK(IsFloating(x.dtype()) && x.dim() >= 1 && x.size(-1) > 0,
             "RmsNorm: x must be a floating [..., D] with D > 0, got %s %s",
             std::string(DTypeName(x.dtype())), x.ShapeString());
  const int64_t d = x.size(-1), n = x.numel() / d;
  LOOM_CHECK(weight.dim() == 1 && weight.size(0) == d && weight.dtype() == x.dtype(),
             "RmsNorm: weight must be %s [%d] for x %s, got %s %s",
             std::string(DTypeName(x.dtype())), d, x.ShapeString(),
             std::string(DTypeName(weight.dtype())), weight.ShapeString());
  LOOM_CHECK(weight.device() == x.device(), "RmsNorm: x on %s, weight on %s", x.device().ToString(),
             weight.device().ToString());
  LOOM_CHECK(eps >= 0, "RmsNorm: eps must be >= 0, got %g", eps);
  Tensor x_ND = Reshape(Contiguous(x.Detach()), {n, d});
  Tensor w = Contiguous(weight.Detach());
  Tensor y = Tensor::Empty(x.sizes(), x.dtype(), x.device());
  Tensor rstd = Tensor::Empty({n}, StatDTypeOf(x.dtype()), x.device());
  GetBackend(x.device()).RmsNormForward(x_ND, w, eps, Reshape(y, {n, d}), rstd);
  if (autograd::NeedsGrad({&x, &weight})) {
    RecordFunction("RmsNormBackward", {x, weight}, {y},
                   [x_ND, w, rstd, sizes = x.sizes()](BackwardContext& ctx, Grads g) -> Grads {
                     Tensor gy = Reshape(Contiguous(Cast(g[0], x_ND.dtype())), x_ND.sizes());
                     Tensor gx = Tensor::Empty(x_ND.sizes(), x_ND.dtype(), x_ND.device());
                     Tensor gw = Tensor::Empty(w.sizes(), w.dtype(), w.device());
                     GetBackend(x_ND.device()).RmsNormBackward(gy, x_ND, w, rstd, gx, gw);
                     return {ctx.needs_input_grad(0) ? Reshape(gx, sizes) : Tensor(),
                             ctx.needs_input_grad(1) ? gw : Tensor()};
                   });
  }
  return y;
}

}  // namespace loom
