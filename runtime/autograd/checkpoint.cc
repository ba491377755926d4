#include "runtime/autograd/checkpoint.h"

#include "runtime/autograd/engine.h"
#include "runtime/autograd/function.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/random.h"

namespace loom::autograd {

std::vector<Tensor> Checkpoint(CheckpointFn fn, const std::vector<Tensor>& inputs) {
  if (!GradMode::IsEnabled()) return fn(inputs);
  const uint64_t rng_offset = DefaultGenerator().offset();
  std::vector<Tensor> outputs;
  {
    NoGradGuard no_grad;
    outputs = fn(inputs);
  }
  // Outputs may alias inputs (an identity block); give each its own impl.
  for (Tensor& o : outputs) o = o.Detach();

  RecordFunction(
      "CheckpointBackward", inputs, outputs,
      [fn = std::move(fn), inputs, rng_offset](BackwardContext& ctx,
                                               std::vector<Tensor> grads) -> std::vector<Tensor> {
        std::vector<Tensor> detached;
        for (size_t i = 0; i < inputs.size(); ++i) {
          Tensor d = inputs[i].Detach();
          if (ctx.needs_input_grad(int(i))) d.set_requires_grad(true);
          detached.push_back(d);
        }
        std::vector<Tensor> recomputed;
        {
          GradModeGuard enable(true);
          Generator& gen = DefaultGenerator();
          const uint64_t now = gen.offset();
          gen.SetOffset(rng_offset);
          recomputed = fn(detached);
          gen.SetOffset(now);
        }
        LOOM_CHECK(recomputed.size() == grads.size(),
                   "Checkpoint: the recompute returned %d outputs, the forward %d",
                   recomputed.size(), grads.size());
        std::vector<Tensor> roots, root_grads;
        for (size_t i = 0; i < recomputed.size(); ++i) {
          if (recomputed[i].requires_grad()) {
            roots.push_back(recomputed[i]);
            root_grads.push_back(grads[i]);
          }
        }
        if (!roots.empty()) Backward(roots, root_grads);
        std::vector<Tensor> input_grads;
        for (const Tensor& d : detached) input_grads.push_back(d.requires_grad() ? d.grad() : Tensor());
        return input_grads;
      });
  return outputs;
}

}  // namespace loom::autograd
