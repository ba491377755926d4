// Plain host reference of the embedding kernels.
#ifndef LOOM_KERNELS_CUDA_EMBEDDING_REFERENCE_H_
#define LOOM_KERNELS_CUDA_EMBEDDING_REFERENCE_H_

#include <cstdint>
#include <vector>

#include "runtime/dtype.h"
#include "runtime/half.h"

namespace loom::reference {

// One add of the backward in grad_weight's dtype: f64 adds in double, the
// others in float, rounded back to the dtype after every add (the CPU's
// Store<W>(Load(dst) + Load(src))).
inline double AccumulateIn(DType w, double dst, double src) {
  if (w == DType::kF64) return dst + src;
  const float sum = float(dst) + float(src);
  if (w == DType::kBF16) return double(float(BFloat16(sum)));
  if (w == DType::kF16) return double(float(Float16(sum)));
  return double(sum);
}

// grad_weight [vocab, dim] (row-major, updated in place) += grad_out rows by id, token by token.
inline void EmbeddingBackward(int64_t rows, int64_t dim, const std::vector<int64_t>& ids,
                              const std::vector<double>& grad_out, DType grad_weight_dtype,
                              std::vector<double>& grad_weight) {
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t c = 0; c < dim; ++c) {
      double& dst = grad_weight[size_t(ids[size_t(t)] * dim + c)];
      dst = AccumulateIn(grad_weight_dtype, dst, grad_out[size_t(t * dim + c)]);
    }
  }
}

}  // namespace loom::reference

#endif  // LOOM_KERNELS_CUDA_EMBEDDING_REFERENCE_H_
