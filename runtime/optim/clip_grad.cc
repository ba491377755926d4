#include "runtime/optim/clip_grad.h"

#include <cmath>

#include "runtime/autograd/grad_mode.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/reduce.h"

namespace loom {

double GradSumOfSquares(const std::vector<Tensor>& params) {
  double total = 0.0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (g.defined()) total += SumOfSquares(g);
  }
  return total;
}

double GlobalGradNorm(const std::vector<Tensor>& params) {
  return std::sqrt(GradSumOfSquares(params));
}

void ScaleGrads(const std::vector<Tensor>& params, double scale) {
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (g.defined()) AffineInPlace(g, scale);
  }
}

double ClipGradNorm(const std::vector<Tensor>& params, double max_norm) {
  LOOM_CHECK(max_norm > 0, "ClipGradNorm: max_norm must be positive, got %g", max_norm);
  const double norm = GlobalGradNorm(params);
  if (std::isfinite(norm) && norm > max_norm) ScaleGrads(params, max_norm / (norm + 1e-6));
  return norm;
}

}  // namespace loom
