#include "runtime/ops/loss.h"

#include <algorithm>

#include "runtime/autograd/function.h"
#include "runtime/backend.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/reduce.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

using autograd::BackwardContext;
using autograd::RecordFunction;
using Grads = std::vector<Tensor>;

// Per-token losses [N] of logits [N, V] (contiguous) with autograd to logits.
Tensor TokenLosses(const Tensor& logits, const Tensor& logits_NV, const Tensor& labels_N,
                   int64_t ignore_index) {
  const int64_t n = logits_NV.size(0);
  const DType stat = StatDTypeOf(logits.dtype());
  Tensor losses = Tensor::Empty({n}, stat, logits.device());
  Tensor lse = Tensor::Empty({n}, stat, logits.device());
  GetBackend(logits.device()).CrossEntropyForward(logits_NV, labels_N, ignore_index, losses, lse);
  if (autograd::NeedsGrad({&logits})) {
    RecordFunction(
        "CrossEntropyBackward", {logits}, {losses},
        [logits_NV, labels_N, lse, ignore_index, sizes = logits.sizes()](BackwardContext&,
                                                                         Grads g) -> Grads {
          Tensor grad_losses = Contiguous(Cast(g[0], lse.dtype()));
          Tensor glogits = Tensor::Empty(logits_NV.sizes(), logits_NV.dtype(), logits_NV.device());
          GetBackend(logits_NV.device())
              .CrossEntropyBackward(logits_NV, labels_N, lse, grad_losses, ignore_index, glogits);
          return {Reshape(glogits, sizes)};
        });
  }
  return losses;
}

}  // namespace

Tensor CrossEntropy(const Tensor& logits, const Tensor& labels, Reduction reduction,
                    int64_t ignore_index) {
  LOOM_CHECK(IsFloating(logits.dtype()) && logits.dim() >= 1,
             "CrossEntropy: logits must be a floating [..., V] tensor, got %s %s",
             std::string(DTypeName(logits.dtype())), logits.ShapeString());
  LOOM_CHECK(labels.dtype() == DType::kI64, "CrossEntropy: labels must be i64, got %s",
             std::string(DTypeName(labels.dtype())));
  const Dims batch_shape(logits.sizes().begin(), logits.sizes().end() - 1);
  LOOM_CHECK(labels.sizes() == batch_shape,
             "CrossEntropy: labels %s do not match logits %s (expected labels %s)",
             labels.ShapeString(), logits.ShapeString(), DimsString(batch_shape));
  LOOM_CHECK(labels.device() == logits.device(), "CrossEntropy: logits on %s, labels on %s",
             logits.device().ToString(), labels.device().ToString());
  const int64_t n = labels.numel(), v = logits.size(-1);
  Tensor logits_NV = Reshape(Contiguous(logits.Detach()), {n, v});
  Tensor labels_N = Reshape(Contiguous(labels), {n});
  Tensor losses = TokenLosses(logits, logits_NV, labels_N, ignore_index);
  switch (reduction) {
    case Reduction::kNone:
      return Reshape(losses, batch_shape);
    case Reduction::kSum:
      return Sum(losses);
    case Reduction::kMean: {
      // With no trainable token every loss is 0: dividing by 1 gives 0, not NaN.
      const int64_t count = CountTrainableTokens(labels_N, ignore_index);
      return MulScalar(Sum(losses), 1.0 / double(std::max<int64_t>(count, 1)));
    }
  }
  LOOM_CHECK(false, "CrossEntropy: unknown reduction %d", int(reduction));
  __builtin_unreachable();
}

int64_t CountTrainableTokens(const Tensor& labels, int64_t ignore_index) {
  LOOM_CHECK(labels.dtype() == DType::kI64 || labels.dtype() == DType::kI32,
             "CountTrainableTokens: labels must be i64 or i32, got %s",
             std::string(DTypeName(labels.dtype())));
  Tensor host = labels;
  if (!labels.device().is_cpu()) {
    absl::StatusOr<Tensor> copy = labels.CopyTo(Device::CPU());
    LOOM_CHECK_OK(copy.status());
    host = *copy;
  }
  host = Contiguous(host.Detach());
  int64_t count = 0;
  if (host.dtype() == DType::kI64) {
    const int64_t* ls = host.data<int64_t>();
    for (int64_t i = 0; i < host.numel(); ++i) count += ls[i] != ignore_index;
  } else {
    const int32_t* ls = host.data<int32_t>();
    for (int64_t i = 0; i < host.numel(); ++i) count += int64_t(ls[i]) != ignore_index;
  }
  return count;
}

}  // namespace loom
