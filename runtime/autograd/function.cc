#include "runtime/autograd/function.h"

namespace loom::autograd {
namespace {

class LambdaNode final : public Node {
 public:
  LambdaNode(std::string name, BackwardFn fn) : name_(std::move(name)), fn_(std::move(fn)) {}

  std::vector<Tensor> Apply(std::vector<Tensor>&& grads) override {
    LOOM_CHECK(fn_ != nullptr,
               "%s ran a second time but its saved tensors were freed by the first backward; "
               "pass retain_graph=true to the first Backward",
               name_);
    BackwardContext ctx(this);
    std::vector<Tensor> out = fn_(ctx, std::move(grads));
    LOOM_CHECK(out.size() == next_edges().size(), "%s returned %d gradients for %d inputs", name_,
               out.size(), next_edges().size());
    return out;
  }
  std::string name() const override { return name_; }
  void ReleaseSaved() override { fn_ = nullptr; }

 private:
  std::string name_;
  BackwardFn fn_;
};

}  // namespace

std::shared_ptr<Node> RecordFunction(std::string name, const std::vector<Tensor>& inputs,
                                     const std::vector<Tensor>& outputs, BackwardFn backward) {
  if (!NeedsGrad(inputs)) return nullptr;
  auto node = std::make_shared<LambdaNode>(std::move(name), std::move(backward));
  for (const Tensor& in : inputs) node->add_next_edge(GradientEdge(in));
  for (const Tensor& out : outputs) {
    LOOM_CHECK(out.defined() && out.is_leaf() && !out.requires_grad(),
               "%s: outputs must be fresh tensors without history", node->name());
    LOOM_CHECK(IsFloating(out.dtype()), "%s: output of dtype %s cannot carry a gradient",
               node->name(), std::string(DTypeName(out.dtype())));
    AutogradMeta& meta = out.impl()->autograd();
    meta.requires_grad = true;
    meta.grad_fn = node;
    meta.output_nr = node->add_output({out.sizes(), out.dtype(), out.device()});
  }
  return node;
}

std::vector<Tensor> CallFunction(std::string name, const std::vector<Tensor>& inputs,
                                 const std::function<std::vector<Tensor>()>& forward,
                                 BackwardFn backward) {
  std::vector<Tensor> outputs;
  {
    NoGradGuard no_grad;
    outputs = forward();
  }
  RecordFunction(std::move(name), inputs, outputs, std::move(backward));
  return outputs;
}

}  // namespace loom::autograd
