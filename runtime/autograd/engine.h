// Runs the backward pass over the recorded graph.
#ifndef LOOM_RUNTIME_AUTOGRAD_ENGINE_H_
#define LOOM_RUNTIME_AUTOGRAD_ENGINE_H_

#include <vector>

#include "runtime/tensor.h"

namespace loom::autograd {

// Backpropagates `grads` (one per root; undefined = ones, for one-element
// roots) from `roots` into the .grad of every leaf that requires grad.
// Nodes run in a deterministic topological order (latest-created first);
// saved tensors are released after each node unless `retain_graph`.
// Reentrant: a node may itself call Backward (activation checkpointing).
void Backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
              bool retain_graph = false);

}  // namespace loom::autograd

#endif  // LOOM_RUNTIME_AUTOGRAD_ENGINE_H_
