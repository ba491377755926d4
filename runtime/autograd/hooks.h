// Backward hooks on groups of tensors: the building block of module-level
// pre-backward / post-backward hooks (FSDP re-gathers parameters before a
// block's backward and reduce-scatters after it; activation offloading).
//
//   // Runs `hook` once, when the first gradient for any of `outputs` arrives
//   // (i.e. just before the backward of the block that produced them):
//   outputs = autograd::OnGradientsArriving(outputs, [&] { fsdp.Unshard(); });
//   // Runs `hook` once, after the gradients of all `inputs` were computed
//   // (i.e. right after that block's backward):
//   inputs = autograd::OnGradientsComputed(inputs, [&] { fsdp.ReduceScatter(); });
//
// Both return new handles (identity in value) that must be used in place of
// the originals for the hook to be on the path of the gradients.
#ifndef LOOM_RUNTIME_AUTOGRAD_HOOKS_H_
#define LOOM_RUNTIME_AUTOGRAD_HOOKS_H_

#include <functional>
#include <vector>

#include "runtime/tensor.h"

namespace loom::autograd {

std::vector<Tensor> OnGradientsArriving(const std::vector<Tensor>& tensors,
                                        std::function<void()> hook);

std::vector<Tensor> OnGradientsComputed(const std::vector<Tensor>& tensors,
                                        std::function<void()> hook);

}  // namespace loom::autograd

#endif  // LOOM_RUNTIME_AUTOGRAD_HOOKS_H_
