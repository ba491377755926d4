// Activation checkpointing: run a block without keeping its activations and
// recompute them during backward.
//
//   auto out = Checkpoint([&](const std::vector<Tensor>& in) {
//     return std::vector<Tensor>{decoder_layer.Forward(in[0])};
//   }, {hidden});
//
// Parameters used inside `fn` receive their gradients as usual (the recompute
// runs with grad enabled and backpropagates into them). The random-number
// offset is restored for the recompute so dropout-like ops repeat exactly.
#ifndef LOOM_RUNTIME_AUTOGRAD_CHECKPOINT_H_
#define LOOM_RUNTIME_AUTOGRAD_CHECKPOINT_H_

#include <functional>
#include <vector>

#include "runtime/tensor.h"

namespace loom::autograd {

using CheckpointFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

std::vector<Tensor> Checkpoint(CheckpointFn fn, const std::vector<Tensor>& inputs);

}  // namespace loom::autograd

#endif  // LOOM_RUNTIME_AUTOGRAD_CHECKPOINT_H_
