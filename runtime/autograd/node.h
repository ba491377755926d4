// Nodes of the autograd graph.
//
// Every op that produced a tensor requiring grad leaves a Node whose Apply
// maps the gradients of its outputs to the gradients of its inputs. Edges
// point from a node to the nodes that produced its inputs; leaves end in an
// AccumulateGrad node that adds into the leaf's .grad.
#ifndef LOOM_RUNTIME_AUTOGRAD_NODE_H_
#define LOOM_RUNTIME_AUTOGRAD_NODE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace loom::autograd {

class Node;

struct Edge {
  std::shared_ptr<Node> node;  // null: this input needs no gradient
  int input_nr = 0;            // which output slot of `node` the gradient feeds
  bool valid() const { return node != nullptr; }
};

// Shape, dtype and device of one forward output: undefined incoming gradients
// are materialized as zeros of this form.
struct OutputMeta {
  Dims sizes;
  DType dtype = DType::kF32;
  Device device;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node() = default;

  // grads[i] is the gradient of output i (defined, output shape). Returns one
  // gradient per next edge (undefined where none flows).
  virtual std::vector<Tensor> Apply(std::vector<Tensor>&& grads) = 0;
  virtual std::string name() const = 0;
  // Drops what was saved for backward; the engine calls it right after Apply
  // unless the graph is retained.
  virtual void ReleaseSaved() {}

  const std::vector<Edge>& next_edges() const { return next_edges_; }
  void add_next_edge(Edge e) { next_edges_.push_back(std::move(e)); }
  const std::vector<OutputMeta>& outputs() const { return outputs_; }
  int add_output(OutputMeta m) {
    outputs_.push_back(std::move(m));
    return int(outputs_.size()) - 1;
  }
  // Creation order; later nodes run first in backward, which is a valid and
  // deterministic topological order.
  uint64_t sequence_nr() const { return sequence_nr_; }
  // Whether input i (next edge i) needs a gradient.
  bool needs_input_grad(int i) const { return i < int(next_edges_.size()) && next_edges_[i].valid(); }

 private:
  std::vector<Edge> next_edges_;
  std::vector<OutputMeta> outputs_;
  uint64_t sequence_nr_;
};

// Adds incoming gradients into a leaf tensor's .grad (cast to its grad dtype)
// and then runs the leaf's post-accumulate hooks.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  std::vector<Tensor> Apply(std::vector<Tensor>&& grads) override;
  std::string name() const override { return "AccumulateGrad"; }
  const std::shared_ptr<TensorImpl>& leaf() const { return leaf_; }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

// The edge a gradient for `t` should flow into: t's grad_fn, its leaf
// accumulator (created on demand) or nothing.
Edge GradientEdge(const Tensor& t);

// True if grad mode is on and any input requires grad.
bool NeedsGrad(std::initializer_list<const Tensor*> inputs);
bool NeedsGrad(const std::vector<Tensor>& inputs);

}  // namespace loom::autograd

#endif  // LOOM_RUNTIME_AUTOGRAD_NODE_H_
