// Softmax and log-softmax along one dim, numerically stable (max-subtracted).
#ifndef LOOM_RUNTIME_OPS_SOFTMAX_H_
#define LOOM_RUNTIME_OPS_SOFTMAX_H_

#include "runtime/tensor.h"

namespace loom {

// exp(x - max) / sum(exp(x - max)) along `dim`. A non-last dim is moved last
// (transpose + contiguous copy) and back; the result is contiguous.
Tensor Softmax(const Tensor& x, int dim = -1);
// x - max - log(sum(exp(x - max))) along `dim`.
Tensor LogSoftmax(const Tensor& x, int dim = -1);

}  // namespace loom

#endif  // LOOM_RUNTIME_OPS_SOFTMAX_H_
