// Plain host reference of LaunchGemm (gemm.h): the triple loop in double.
#ifndef LOOM_KERNELS_CUDA_GEMM_REFERENCE_H_
#define LOOM_KERNELS_CUDA_GEMM_REFERENCE_H_

#include <cstdint>
#include <functional>
#include <vector>

namespace loom::reference {

// out[b][i][j] = alpha * sum_k A(b, i, k) * B(b, k, j) + beta * out[b][i][j],
// with A(b, i, k) and B(b, k, j) read through the accessors (which apply the
// transposes and strides), out given as a dense [batch][m][n] array.
inline void Gemm(int64_t batch, int64_t m, int64_t n, int64_t k,
                 const std::function<double(int64_t, int64_t, int64_t)>& a,
                 const std::function<double(int64_t, int64_t, int64_t)>& b, double alpha,
                 double beta, std::vector<double>* out) {
  for (int64_t bi = 0; bi < batch; ++bi) {
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t kk = 0; kk < k; ++kk) acc += a(bi, i, kk) * b(bi, kk, j);
        double& o = (*out)[size_t((bi * m + i) * n + j)];
        o = alpha * acc + (beta == 0 ? 0.0 : beta * o);
      }
    }
  }
}

}  // namespace loom::reference

#endif  // LOOM_KERNELS_CUDA_GEMM_REFERENCE_H_
