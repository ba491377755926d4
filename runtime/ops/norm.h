// Normalization layers.
#ifndef LOOM_RUNTIME_OPS_NORM_H_
#define LOOM_RUNTIME_OPS_NORM_H_

#include "runtime/tensor.h"

namespace loom {

// RMSNorm over the last dim as Hugging Face LlamaRMSNorm computes it:
//   weight * (x * rsqrt(mean(x^2) + eps)).to(x.dtype)
// with the statistics in f32 (f64 for f64 x). x [..., D], weight [D] of x's dtype.
Tensor RmsNorm(const Tensor& x, const Tensor& weight, double eps);

}  // namespace loom

#endif  // LOOM_RUNTIME_OPS_NORM_H_
