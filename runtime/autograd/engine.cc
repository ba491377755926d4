#include "runtime/autograd/engine.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/node.h"
#include "runtime/backend.h"

namespace loom::autograd {
namespace {

struct Later {
  bool operator()(const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) const {
    return a->sequence_nr() < b->sequence_nr();
  }
};

// Adds `g` into slot `slot`, summing with what is already there.
void Accumulate(std::vector<Tensor>& slots, int slot, const Tensor& g) {
  Tensor& cur = slots[slot];
  if (!cur.defined()) {
    cur = g;
    return;
  }
  Tensor sum = Tensor::Empty(cur.sizes(), cur.dtype(), cur.device());
  Tensor addend = g;
  Backend& backend = GetBackend(cur.device());
  if (g.dtype() != cur.dtype()) {
    addend = Tensor::Empty(g.sizes(), cur.dtype(), g.device());
    backend.Copy(g, addend);
  }
  backend.Binary(BinaryOp::kAdd, cur, addend, sum);
  cur = sum;
}

}  // namespace

void Backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
              bool retain_graph) {
  LOOM_CHECK(grads.empty() || grads.size() == roots.size(), "Backward: %d roots, %d gradients",
             roots.size(), grads.size());
  NoGradGuard no_grad;  // backward formulas do not record history

  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  std::unordered_map<Node*, int> dependencies;
  std::vector<std::shared_ptr<Node>> root_nodes;

  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    LOOM_CHECK(r.defined() && r.requires_grad(),
               "Backward: root %d does not require grad (no input of it requires grad, or it was "
               "computed under NoGradGuard)",
               i);
    Tensor g = grads.empty() ? Tensor() : grads[i];
    if (!g.defined()) {
      LOOM_CHECK(r.numel() == 1, "Backward: root %d has shape %s; give its gradient explicitly", i,
                 r.ShapeString());
      g = Tensor::Ones(r.sizes(), r.dtype(), r.device());
    }
    LOOM_CHECK(g.sizes() == r.sizes(), "Backward: gradient %s for root of shape %s",
               g.ShapeString(), r.ShapeString());
    Edge e = GradientEdge(r);
    auto& slots = buffers[e.node.get()];
    slots.resize(e.node->outputs().size());
    Accumulate(slots, e.input_nr, g);
    root_nodes.push_back(e.node);
  }

  // Count, for every reachable node, how many edges lead into it.
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  for (auto& n : root_nodes) {
    if (seen.insert(n.get()).second) stack.push_back(n.get());
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      ++dependencies[e.node.get()];
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }

  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, Later> ready;
  std::unordered_set<Node*> queued;
  for (auto& n : root_nodes) {
    if (dependencies[n.get()] == 0 && queued.insert(n.get()).second) ready.push(n);
  }

  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.top();
    ready.pop();
    std::vector<Tensor> in = std::move(buffers[node.get()]);
    buffers.erase(node.get());
    in.resize(node->outputs().size());
    for (size_t i = 0; i < in.size(); ++i) {
      if (!in[i].defined()) {
        const OutputMeta& m = node->outputs()[i];
        in[i] = Tensor::Zeros(m.sizes, m.dtype, m.device);
      }
    }
    std::vector<Tensor> out = node->Apply(std::move(in));
    if (!retain_graph) node->ReleaseSaved();

    const auto& edges = node->next_edges();
    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.valid()) continue;
      if (i < out.size() && out[i].defined()) {
        const OutputMeta& m = e.node->outputs()[e.input_nr];
        LOOM_CHECK(out[i].sizes() == m.sizes,
                   "%s produced a gradient of shape %s for input %d, which has shape %s",
                   node->name(), out[i].ShapeString(), i, DimsString(m.sizes));
        auto& slots = buffers[e.node.get()];
        slots.resize(e.node->outputs().size());
        Accumulate(slots, e.input_nr, out[i]);
      }
      if (--dependencies[e.node.get()] == 0) ready.push(e.node);
    }
  }
}

}  // namespace loom::autograd

namespace loom {
void Tensor::Backward(const Tensor& gradient, bool retain_graph) const {
  autograd::Backward({*this}, {gradient}, retain_graph);
}
}  // namespace loom
