#include "runtime/autograd/hooks.h"

#include "runtime/autograd/function.h"

namespace loom::autograd {
namespace {

// Identity over `tensors` whose single backward node runs `hook` first.
// One node for the whole group, so the engine runs it once, after every
// gradient for the group has arrived (the engine waits for all producers).
std::vector<Tensor> IdentityWithHook(const char* name, const std::vector<Tensor>& tensors,
                                     std::function<void()> hook) {
  std::vector<Tensor> outs;
  for (const Tensor& t : tensors) outs.push_back(t.Detach());
  std::vector<Tensor> differentiable_in, differentiable_out;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].requires_grad()) {
      differentiable_in.push_back(tensors[i]);
      differentiable_out.push_back(outs[i]);
    }
  }
  RecordFunction(name, differentiable_in, differentiable_out,
                 [hook = std::move(hook)](BackwardContext&, std::vector<Tensor> grads) {
                   hook();
                   return grads;
                 });
  // Non-differentiable members keep their original handle.
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].requires_grad()) outs[i] = tensors[i];
  }
  return outs;
}

}  // namespace

std::vector<Tensor> OnGradientsArriving(const std::vector<Tensor>& tensors,
                                        std::function<void()> hook) {
  return IdentityWithHook("PreBackwardHook", tensors, std::move(hook));
}

std::vector<Tensor> OnGradientsComputed(const std::vector<Tensor>& tensors,
                                        std::function<void()> hook) {
  // The identity node sits between the block's inputs and the block, so its
  // backward runs once the block has produced every input gradient. The hook
  // then runs after those gradients exist, before they flow further back.
  return IdentityWithHook("PostBackwardHook", tensors, std::move(hook));
}

}  // namespace loom::autograd
