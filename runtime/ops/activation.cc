#include "runtime/ops/activation.h"

#include "runtime/autograd/function.h"
#include "runtime/backend.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

using autograd::BackwardContext;
using autograd::RecordFunction;
using Grads = std::vector<Tensor>;

// A contiguous tensor as the [N, F] the kernels take.
Tensor Rows(const Tensor& t) {
  const int64_t f = t.dim() == 0 ? 1 : t.size(-1);
  return Reshape(t, {f == 0 ? 0 : t.numel() / f, f});
}

}  // namespace

Tensor SwiGlu(const Tensor& gate, const Tensor& up) {
  LOOM_CHECK(IsFloating(gate.dtype()) && gate.dtype() == up.dtype() && gate.sizes() == up.sizes(),
             "SwiGlu: gate and up must be floating tensors of one dtype and shape, got %s %s and "
             "%s %s",
             std::string(DTypeName(gate.dtype())), gate.ShapeString(),
             std::string(DTypeName(up.dtype())), up.ShapeString());
  LOOM_CHECK(gate.device() == up.device(), "SwiGlu: gate on %s, up on %s", gate.device().ToString(),
             up.device().ToString());
  Tensor gate_c = Contiguous(gate.Detach()), up_c = Contiguous(up.Detach());
  Tensor out = Tensor::Empty(gate.sizes(), gate.dtype(), gate.device());
  if (out.numel() > 0) GetBackend(gate.device()).SwiGluForward(Rows(gate_c), Rows(up_c), Rows(out));
  if (autograd::NeedsGrad({&gate, &up})) {
    RecordFunction("SwiGluBackward", {gate, up}, {out},
                   [gate_c, up_c](BackwardContext& ctx, Grads g) -> Grads {
                     Tensor gout = Contiguous(Cast(g[0], gate_c.dtype()));
                     Tensor ggate = Tensor::Empty(gate_c.sizes(), gate_c.dtype(), gate_c.device());
                     Tensor gup = Tensor::Empty(gate_c.sizes(), gate_c.dtype(), gate_c.device());
                     if (ggate.numel() > 0) {
                       GetBackend(gate_c.device())
                           .SwiGluBackward(Rows(gate_c), Rows(up_c), Rows(gout), Rows(ggate),
                                           Rows(gup));
                     }
                     return {ctx.needs_input_grad(0) ? ggate : Tensor(),
                             ctx.needs_input_grad(1) ? gup : Tensor()};
                   });
  }
  return out;
}

}  // namespace loom
