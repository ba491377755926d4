#include "model/layers.h"

#include "runtime/ops/embedding.h"
#include "runtime/ops/matmul.h"
#include "runtime/ops/norm.h"

namespace loom::nn {

Linear::Linear(int64_t in_features, int64_t out_features, DType dtype, Device device)
    : weight_(
          RegisterParameter("weight", Tensor::Zeros({out_features, in_features}, dtype, device))) {}

Tensor Linear::Forward(const Tensor& x) {
  ForwardScope scope(*this);
  return loom::Linear(x, weight_);
}

Embedding::Embedding(int64_t num_embeddings, int64_t dim, DType dtype, Device device)
    : weight_(RegisterParameter("weight", Tensor::Zeros({num_embeddings, dim}, dtype, device))) {}

Tensor Embedding::Forward(const Tensor& ids) {
  ForwardScope scope(*this);
  return loom::Embedding(ids, weight_);
}

RmsNorm::RmsNorm(int64_t dim, double eps, DType dtype, Device device)
    : weight_(RegisterParameter("weight", Tensor::Ones({dim}, dtype, device))), eps_(eps) {}

Tensor RmsNorm::Forward(const Tensor& x) {
  ForwardScope scope(*this);
  return loom::RmsNorm(x, weight_, eps_);
}

}  // namespace loom::nn
