// Global gradient-norm clipping, as torch.nn.utils.clip_grad_norm_.
//
// The norm is the L2 norm of all grads taken together, accumulated in f64 in a
// fixed order (each grad's sum of squares in the backend's fixed blocks, then
// summed in parameter order), so it is the same for any thread count.
// Parameters whose grad is undefined are ignored.
#ifndef LOOM_RUNTIME_OPTIM_CLIP_GRAD_H_
#define LOOM_RUNTIME_OPTIM_CLIP_GRAD_H_

#include <vector>

#include "runtime/tensor.h"

namespace loom {

// Sum over parameters of the squared L2 norms of their grads. Sharded
// training all-reduces this across ranks before taking the square root.
double GradSumOfSquares(const std::vector<Tensor>& params);
// sqrt(GradSumOfSquares(params)); 0 when no parameter has a grad.
double GlobalGradNorm(const std::vector<Tensor>& params);
// grad *= scale for every defined grad, in place.
void ScaleGrads(const std::vector<Tensor>& params, double scale);

// Returns the global grad norm before clipping. If it exceeds max_norm, every
// grad is scaled by max_norm / (norm + 1e-6) (torch's formula). A non-finite
// norm (an inf or NaN grad) is returned as is and the grads are left
// untouched: the caller decides (skip the step, or stop).
double ClipGradNorm(const std::vector<Tensor>& params, double max_norm);

}  // namespace loom

#endif  // LOOM_RUNTIME_OPTIM_CLIP_GRAD_H_
