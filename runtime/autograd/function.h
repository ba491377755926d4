// Custom autograd functions: a forward and a backward written by hand.
//
// Every differentiable op is built this way, and fused ops (RMSNorm,
// attention, cross-entropy) and parallel primitives (TP's all-reduce in
// backward, CP's ring) use the same API:
//
//   Tensor Square(const Tensor& x) {
//     Tensor y = ...kernel(x)...;                  // computed without history
//     RecordFunction("SquareBackward", {x}, {y},
//         [x](BackwardContext& ctx, std::vector<Tensor> g) -> std::vector<Tensor> {
//           return {Mul(g[0], MulScalar(x, 2.0))};
//         });
//     return y;
//   }
//
// Whatever the backward lambda captures is "saved for backward" and is freed
// as soon as the backward has run (unless the graph is retained), so
// activations do not outlive their use.
#ifndef LOOM_RUNTIME_AUTOGRAD_FUNCTION_H_
#define LOOM_RUNTIME_AUTOGRAD_FUNCTION_H_

#include <functional>
#include <string>
#include <vector>

#include "runtime/autograd/grad_mode.h"
#include "runtime/autograd/node.h"
#include "runtime/tensor.h"

namespace loom::autograd {

class BackwardContext {
 public:
  explicit BackwardContext(const Node* node) : node_(node) {}
  // Whether the gradient of forward input i is wanted; skip its work if not.
  bool needs_input_grad(int i) const { return node_->needs_input_grad(i); }

 private:
  const Node* node_;
};

// Receives gradients of the outputs (always defined: zeros where no gradient
// flowed) and returns one gradient per input (undefined = none).
using BackwardFn = std::function<std::vector<Tensor>(BackwardContext&, std::vector<Tensor>)>;

// Connects `outputs` (freshly computed, no history yet) to `inputs` through a
// node running `backward`. Does nothing when grad mode is off or no input
// requires grad. Returns the node (or null).
std::shared_ptr<Node> RecordFunction(std::string name, const std::vector<Tensor>& inputs,
                                     const std::vector<Tensor>& outputs, BackwardFn backward);

// Runs `forward` without recording history, then RecordFunction. The forward
// may call any op; only the hand-written backward is used for gradients.
std::vector<Tensor> CallFunction(std::string name, const std::vector<Tensor>& inputs,
                                 const std::function<std::vector<Tensor>()>& forward,
                                 BackwardFn backward);

}  // namespace loom::autograd

#endif  // LOOM_RUNTIME_AUTOGRAD_FUNCTION_H_
