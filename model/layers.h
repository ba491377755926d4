// Leaf modules that hold parameters (namespace nn, as torch.nn, so they do
// not clash with the ops of the same name): Linear (no bias, as Llama), Embedding
// and RMSNorm. Weights are created uninitialized-but-zeroed; the owning
// model initializes them (see LlamaForCausalLM::InitWeights).
#ifndef LOOM_MODEL_LAYERS_H_
#define LOOM_MODEL_LAYERS_H_

#include <cstdint>

#include "model/module.h"

namespace loom::nn {

// y = x W^T with W [out, in] (torch.nn.Linear layout, as checkpoints store it).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, DType dtype, Device device);
  Tensor Forward(const Tensor& x);
  const Tensor& weight() const { return weight_; }

 private:
  Tensor weight_;
};

// Rows of a [num, dim] table, gathered by i64 ids.
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, DType dtype, Device device);
  Tensor Forward(const Tensor& ids);
  const Tensor& weight() const { return weight_; }

 private:
  Tensor weight_;
};

// x / sqrt(mean(x^2) + eps) * weight (Hugging Face LlamaRMSNorm: normalizes
// in f32, scales in the input dtype). Weight starts at ones.
class RmsNorm : public Module {
 public:
  RmsNorm(int64_t dim, double eps, DType dtype, Device device);
  Tensor Forward(const Tensor& x);
  const Tensor& weight() const { return weight_; }

 private:
  Tensor weight_;
  double eps_;
};

}  // namespace loom::nn

#endif  // LOOM_MODEL_LAYERS_H_
