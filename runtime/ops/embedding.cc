#include "runtime/ops/embedding.h"

#include "runtime/autograd/function.h"
#include "runtime/backend.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

using autograd::BackwardContext;
using autograd::RecordFunction;
using Grads = std::vector<Tensor>;

// Where the weight gradient accumulates: f32 for 16-bit weights, so that many
// tokens with the same id do not each round to 8 bits of mantissa.
DType AccumulationDType(DType dtype) {
  return dtype == DType::kBF16 || dtype == DType::kF16 ? DType::kF32 : dtype;
}

}  // namespace

Tensor Embedding(const Tensor& ids, const Tensor& weight) {
  LOOM_CHECK(ids.dtype() == DType::kI32 || ids.dtype() == DType::kI64,
             "Embedding: ids must be i32 or i64, got %s", std::string(DTypeName(ids.dtype())));
  LOOM_CHECK(weight.dim() == 2 && IsFloating(weight.dtype()),
             "Embedding: weight must be a floating [V, D], got %s %s",
             std::string(DTypeName(weight.dtype())), weight.ShapeString());
  LOOM_CHECK(ids.device() == weight.device(), "Embedding: ids on %s, weight on %s",
             ids.device().ToString(), weight.device().ToString());
  const int64_t n = ids.numel(), vocab = weight.size(0), d = weight.size(1);
  Dims out_shape = ids.sizes();
  out_shape.push_back(d);
  Tensor out = Tensor::Empty(out_shape, weight.dtype(), weight.device());
  Tensor ids_N = Reshape(Contiguous(ids), {n});
  GetBackend(weight.device())
      .EmbeddingForward(Contiguous(weight.Detach()), ids_N, Reshape(out, {n, d}));
  if (autograd::NeedsGrad({&weight})) {
    RecordFunction(
        "EmbeddingBackward", {weight}, {out},
        [ids_N, vocab, d, dtype = weight.dtype()](BackwardContext&, Grads g) -> Grads {
          const int64_t n = ids_N.numel();
          Tensor grad_out = Reshape(Contiguous(Cast(g[0], dtype)), {n, d});
          Tensor grad_weight = Tensor::Zeros({vocab, d}, AccumulationDType(dtype), ids_N.device());
          GetBackend(ids_N.device()).EmbeddingBackward(grad_out, ids_N, grad_weight);
          return {Cast(grad_weight, dtype)};
        });
  }
  return out;
}

}  // namespace loom
