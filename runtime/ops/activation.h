// Fused activations of the Llama MLP.
#ifndef LOOM_RUNTIME_OPS_ACTIVATION_H_
#define LOOM_RUNTIME_OPS_ACTIVATION_H_

#include "runtime/tensor.h"

namespace loom {

// silu(gate) * up, elementwise; gate and up have one shape and dtype.
Tensor SwiGlu(const Tensor& gate, const Tensor& up);

}  // namespace loom

#endif  // LOOM_RUNTIME_OPS_ACTIVATION_H_
