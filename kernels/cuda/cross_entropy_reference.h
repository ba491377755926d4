// Plain host reference of the cross-entropy kernels: loops in double over
// row-major [rows, vocab] logits.
#ifndef LOOM_KERNELS_CUDA_CROSS_ENTROPY_REFERENCE_H_
#define LOOM_KERNELS_CUDA_CROSS_ENTROPY_REFERENCE_H_

#include <cmath>
#include <cstdint>
#include <vector>

namespace loom::reference {

struct CrossEntropyOutputs {
  std::vector<double> losses, lse;
};

inline CrossEntropyOutputs CrossEntropyForward(int64_t rows, int64_t vocab,
                                               const std::vector<double>& logits,
                                               const std::vector<int64_t>& labels,
                                               int64_t ignore_index) {
  CrossEntropyOutputs out{std::vector<double>(size_t(rows)), std::vector<double>(size_t(rows))};
  for (int64_t r = 0; r < rows; ++r) {
    const double* x = logits.data() + r * vocab;
    double mx = -INFINITY;
    for (int64_t j = 0; j < vocab; ++j) mx = std::max(mx, x[j]);
    double sum = 0;
    for (int64_t j = 0; j < vocab; ++j) sum += std::exp(x[j] - mx);
    out.lse[size_t(r)] = mx + std::log(sum);
    out.losses[size_t(r)] =
        labels[size_t(r)] == ignore_index ? 0.0 : out.lse[size_t(r)] - x[labels[size_t(r)]];
  }
  return out;
}

// d(sum_r grad_losses[r] * loss_r) / d logits, with softmax from the given lse.
inline std::vector<double> CrossEntropyBackward(int64_t rows, int64_t vocab,
                                                const std::vector<double>& logits,
                                                const std::vector<int64_t>& labels,
                                                const std::vector<double>& lse,
                                                const std::vector<double>& grad_losses,
                                                int64_t ignore_index) {
  std::vector<double> g(logits.size(), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    if (labels[size_t(r)] == ignore_index) continue;
    for (int64_t j = 0; j < vocab; ++j) {
      const double p = std::exp(logits[size_t(r * vocab + j)] - lse[size_t(r)]);
      g[size_t(r * vocab + j)] =
          grad_losses[size_t(r)] * (p - (j == labels[size_t(r)] ? 1.0 : 0.0));
    }
  }
  return g;
}

}  // namespace loom::reference

#endif  // LOOM_KERNELS_CUDA_CROSS_ENTROPY_REFERENCE_H_
