#include "runtime/autograd/node.h"

#include <atomic>

#include "runtime/autograd/grad_mode.h"
#include "runtime/backend.h"

namespace loom {
thread_local bool GradMode::enabled_ = true;
}  // namespace loom

namespace loom::autograd {
namespace {
std::atomic<uint64_t> g_next_sequence_nr{0};
}  // namespace

Node::Node() : sequence_nr_(g_next_sequence_nr.fetch_add(1)) {}

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {
  Tensor t(leaf_);
  add_output({t.sizes(), t.dtype(), t.device()});
}

std::vector<Tensor> AccumulateGrad::Apply(std::vector<Tensor>&& grads) {
  Tensor leaf(leaf_);
  const Tensor& g = grads[0];
  AutogradMeta& meta = leaf_->autograd();
  const DType grad_dtype = meta.grad_dtype.value_or(leaf.dtype());
  LOOM_CHECK(g.sizes() == leaf.sizes(), "AccumulateGrad: gradient %s for leaf %s of shape %s",
             g.ShapeString(), leaf.name(), leaf.ShapeString());
  Backend& backend = GetBackend(leaf.device());
  Tensor acc = leaf.grad();
  if (!acc.defined()) {
    // A fresh contiguous tensor: the incoming gradient may alias other data.
    acc = Tensor::Empty(leaf.sizes(), grad_dtype, leaf.device());
    backend.Copy(g, acc);
    leaf.set_grad(acc);
  } else {
    LOOM_CHECK(acc.sizes() == leaf.sizes(), "leaf %s has a .grad of shape %s, expected %s",
               leaf.name(), acc.ShapeString(), leaf.ShapeString());
    Tensor addend = g;
    if (g.dtype() != acc.dtype()) {
      addend = Tensor::Empty(g.sizes(), acc.dtype(), g.device());
      backend.Copy(g, addend);
    }
    backend.Binary(BinaryOp::kAdd, acc, addend, acc);
  }
  for (const GradHook& hook : meta.post_accumulate_hooks) hook(leaf);
  return {};
}

Edge GradientEdge(const Tensor& t) {
  if (!t.defined()) return {};
  AutogradMeta& meta = t.impl()->autograd();
  if (meta.grad_fn) return {meta.grad_fn, meta.output_nr};
  if (!meta.requires_grad) return {};
  std::shared_ptr<Node> acc = meta.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    meta.grad_accumulator = acc;
  }
  return {acc, 0};
}

bool NeedsGrad(std::initializer_list<const Tensor*> inputs) {
  if (!GradMode::IsEnabled()) return false;
  for (const Tensor* t : inputs) {
    if (t->defined() && t->requires_grad()) return true;
  }
  return false;
}

bool NeedsGrad(const std::vector<Tensor>& inputs) {
  if (!GradMode::IsEnabled()) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

}  // namespace loom::autograd
