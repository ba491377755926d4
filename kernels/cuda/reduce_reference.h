// Plain host reference of the reduce kernels: loops in double.
//
//   std::vector<double> want = reference::Reduce(ReduceOp::kSum, {2, 3}, {false, true}, x);
#ifndef LOOM_KERNELS_CUDA_REDUCE_REFERENCE_H_
#define LOOM_KERNELS_CUDA_REDUCE_REFERENCE_H_

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "runtime/backend.h"

namespace loom::reference {

// `x` holds the elements of a [sizes] tensor in row-major order; the result
// holds one value per kept index, in row-major order of the kept dims.
inline std::vector<double> Reduce(ReduceOp op, const std::vector<int64_t>& sizes,
                                  const std::vector<bool>& reduce_dim,
                                  const std::vector<double>& x) {
  int64_t n_out = 1, n_in = 1;
  for (size_t d = 0; d < sizes.size(); ++d) (reduce_dim[d] ? n_in : n_out) *= sizes[d];
  const double init = op == ReduceOp::kMax   ? -std::numeric_limits<double>::infinity()
                      : op == ReduceOp::kMin ? std::numeric_limits<double>::infinity()
                                             : 0.0;
  std::vector<double> out(size_t(n_out), init);
  for (size_t linear = 0; linear < x.size(); ++linear) {
    // The kept index of this element: its multi-index with the reduced dims dropped.
    int64_t rem = int64_t(linear), o = 0, scale = 1;
    for (int d = int(sizes.size()) - 1; d >= 0; --d) {
      const int64_t i = rem % sizes[d];
      rem /= sizes[d];
      if (!reduce_dim[d]) {
        o += i * scale;
        scale *= sizes[d];
      }
    }
    const double v = x[linear];
    double& acc = out[size_t(o)];
    switch (op) {
      case ReduceOp::kSum:
      case ReduceOp::kMean:
        acc += v;
        break;
      case ReduceOp::kSumSquares:
        acc += v * v;
        break;
      case ReduceOp::kMax:
        acc = (v > acc || std::isnan(v)) ? v : acc;
        break;
      case ReduceOp::kMin:
        acc = (v < acc || std::isnan(v)) ? v : acc;
        break;
    }
  }
  if (op == ReduceOp::kMean) {
    for (double& v : out) v /= double(n_in);
  }
  return out;
}

}  // namespace loom::reference

#endif  // LOOM_KERNELS_CUDA_REDUCE_REFERENCE_H_
