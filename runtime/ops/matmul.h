// Differentiable matrix products: MatMul (batched, broadcasting) and Linear
// (the Hugging Face nn.Linear layout). Both run on Backend::Gemm and pass
// transposed views as BLAS trans flags instead of copying them.
#ifndef LOOM_RUNTIME_OPS_MATMUL_H_
#define LOOM_RUNTIME_OPS_MATMUL_H_

#include "runtime/tensor.h"

namespace loom {

// a [..., M, K] @ b [..., K, N] -> [..., M, N]. The batch dims broadcast
// (NumPy rules); an operand without batch dims (or with all of them 1) is
// shared by every batch without a copy. Both operands need >= 2 dims.
Tensor MatMul(const Tensor& a, const Tensor& b);

// x [..., in] @ weight[out, in]^T + bias[out] -> [..., out]. `bias` may be
// undefined. All leading dims of x are flattened into the rows of one GEMM,
// in the forward and in the backward.
Tensor Linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace loom

#endif  // LOOM_RUNTIME_OPS_MATMUL_H_
