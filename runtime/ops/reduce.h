// Differentiable reductions. `dims` empty means all dims.
#ifndef LOOM_RUNTIME_OPS_REDUCE_H_
#define LOOM_RUNTIME_OPS_REDUCE_H_

#include <vector>

#include "runtime/tensor.h"

namespace loom {

Tensor Sum(const Tensor& x, std::vector<int> dims = {}, bool keepdim = false);
Tensor Mean(const Tensor& x, std::vector<int> dims = {}, bool keepdim = false);
// Gradient flows to every maximal element, split evenly among ties.
Tensor Max(const Tensor& x, std::vector<int> dims = {}, bool keepdim = false);
Tensor Min(const Tensor& x, std::vector<int> dims = {}, bool keepdim = false);
// Sum of squares over all elements, accumulated in f64 (no autograd); the
// building block of gradient-norm clipping.
double SumOfSquares(const Tensor& x);

}  // namespace loom

#endif  // LOOM_RUNTIME_OPS_REDUCE_H_
