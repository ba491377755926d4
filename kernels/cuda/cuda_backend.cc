// CudaBackend: the memory-bound ops (elementwise, reduce, softmax,
// cross-entropy, embedding) and random fills. Matrix products, attention and
// the fused layers are in cuda_backend_fused.cc.
#include "kernels/cuda/cuda_backend.h"

#include <climits>
#include <string>

#include "kernels/cuda/cross_entropy.h"
#include "kernels/cuda/cuda_backend_util.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/random.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/softmax.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

using backend_internal::BadRowFlag;
using backend_internal::Check;
using backend_internal::In;
using backend_internal::LaunchScope;
using backend_internal::Out;
using backend_internal::Scratch;

std::string Name(DType dtype) { return std::string(DTypeName(dtype)); }

void CheckSameShape(const char* op, const Tensor& a, const Tensor& out) {
  LOOM_CHECK(a.sizes() == out.sizes(), "%s: %s into %s", op, a.ShapeString(), out.ShapeString());
}

void CheckRows(const char* op, const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dim() == 2 && a.sizes() == b.sizes() && a.dtype() == b.dtype(),
             "%s: expected two [N, D] tensors of one dtype, got %s %s and %s %s", op,
             Name(a.dtype()), a.ShapeString(), Name(b.dtype()), b.ShapeString());
  LOOM_CHECK(a.is_contiguous() && b.is_contiguous(), "%s: tensors must be contiguous", op);
}

// The checks of the CPU's cross-entropy (kernels/cpu/cross_entropy.cc).
void CheckCrossEntropyShapes(const char* op, const Tensor& logits, const Tensor& labels,
                             const Tensor& stat) {
  LOOM_CHECK(logits.dim() == 2 && logits.is_contiguous(),
             "%s: logits must be a contiguous [N, V], got %s", op, logits.ShapeString());
  const int64_t n = logits.size(0);
  LOOM_CHECK(labels.dtype() == DType::kI64 && labels.dim() == 1 && labels.size(0) == n &&
                 labels.is_contiguous(),
             "%s: labels must be a contiguous i64 [%d], got %s %s", op, n, Name(labels.dtype()),
             labels.ShapeString());
  LOOM_CHECK(stat.dim() == 1 && stat.size(0) == n && stat.dtype() == StatDTypeOf(logits.dtype()) &&
                 stat.is_contiguous(),
             "%s: expected a contiguous %s [%d] statistic, got %s %s", op,
             Name(StatDTypeOf(logits.dtype())), n, Name(stat.dtype()), stat.ShapeString());
}

// Aborts with the CPU's message if the kernels flagged a label.
void CheckLabelsFlag(const char* op, const BadRowFlag& flag, const Tensor& labels,
                     int64_t ignore_index, int64_t v) {
  const int64_t row = flag.FirstBadRow();
  if (row < 0) return;
  const int64_t label = int64_t(labels.Detach().ToDoubles()[size_t(row)]);
  LOOM_CHECK(false,
             "%s: label %d at position %d (of %d flattened tokens) is not in [0, %d) and is not "
             "ignore_index (%d)",
             op, label, row, labels.size(0), v, ignore_index);
}

void CheckIds(const char* op, const Tensor& ids, int64_t n) {
  LOOM_CHECK((ids.dtype() == DType::kI32 || ids.dtype() == DType::kI64) && ids.dim() == 1 &&
                 ids.size(0) == n && ids.is_contiguous(),
             "%s: ids must be a contiguous i32/i64 [%d], got %s %s", op, n, Name(ids.dtype()),
             ids.ShapeString());
}

void CheckIdsFlag(const char* op, const BadRowFlag& flag, const Tensor& ids, int64_t vocab) {
  const int64_t row = flag.FirstBadRow();
  if (row < 0) return;
  const int64_t id = int64_t(ids.ToDoubles()[size_t(row)]);
  LOOM_CHECK(false,
             "%s: id %d at position %d (of %d flattened ids) is out of range for a vocabulary of "
             "%d rows",
             op, id, row, ids.size(0), vocab);
}

}  // namespace

// ---- Elementwise.

void CudaBackend::Copy(const Tensor& src, const Tensor& out) {
  CheckSameShape("Copy", src, out);
  const LaunchScope scope("Copy", {&src, &out});
  Check("Copy", LaunchCopy(out.sizes(), In(src), Out(out), scope.stream()));
}

void CudaBackend::Fill(const Tensor& out, double value) {
  const LaunchScope scope("Fill", {&out});
  Check("Fill", LaunchFill(out.sizes(), Out(out), value, scope.stream()));
}

void CudaBackend::Unary(UnaryOp op, const Tensor& x, const Tensor& out) {
  CheckSameShape("Unary", x, out);
  const LaunchScope scope("Unary", {&x, &out});
  Check("Unary", LaunchUnary(op, out.sizes(), In(x), Out(out), scope.stream()));
}

void CudaBackend::Binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  CheckSameShape("Binary", a, out);
  CheckSameShape("Binary", b, out);
  const LaunchScope scope("Binary", {&a, &b, &out});
  Check("Binary", LaunchBinary(op, out.sizes(), In(a), In(b), Out(out), scope.stream()));
}

void CudaBackend::Affine(const Tensor& x, double alpha, double beta, const Tensor& out) {
  CheckSameShape("Affine", x, out);
  const LaunchScope scope("Affine", {&x, &out});
  Check("Affine", LaunchAffine(out.sizes(), In(x), alpha, beta, Out(out), scope.stream()));
}

void CudaBackend::PowScalar(const Tensor& x, double exponent, const Tensor& out) {
  CheckSameShape("PowScalar", x, out);
  const LaunchScope scope("PowScalar", {&x, &out});
  Check("PowScalar", LaunchPowScalar(out.sizes(), In(x), exponent, Out(out), scope.stream()));
}

// ---- Reductions.

void CudaBackend::Reduce(ReduceOp op, const Tensor& x, const std::vector<bool>& reduce_dim,
                         const Tensor& out) {
  LOOM_CHECK(int(reduce_dim.size()) == x.dim() && out.dim() == x.dim(), "Reduce: %s into %s",
             x.ShapeString(), out.ShapeString());
  LOOM_CHECK(out.is_contiguous(), "Reduce: output must be contiguous");
  for (int d = 0; d < x.dim(); ++d) {
    LOOM_CHECK(out.size(d) == (reduce_dim[d] ? 1 : x.size(d)), "Reduce: %s into %s",
               x.ShapeString(), out.ShapeString());
  }
  const LaunchScope scope("Reduce", {&x, &out});
  const ReduceProblem p{.op = op,
                        .sizes = {x.sizes().begin(), x.sizes().end()},
                        .reduce_dim = reduce_dim,
                        .x = x.raw_data(),
                        .x_dtype = x.dtype(),
                        .x_strides = {x.strides().begin(), x.strides().end()},
                        .out = out.raw_data(),
                        .out_dtype = out.dtype()};
  absl::StatusOr<size_t> bytes = ReduceWorkspaceBytes(p);
  Check("Reduce", bytes.status());
  const Tensor workspace = Scratch(scope.device(), *bytes);
  Check("Reduce", LaunchReduce(p, workspace.raw_data(), scope.stream()));
}

// ---- Softmax.

void CudaBackend::Softmax(const Tensor& x, bool log, const Tensor& out) {
  CheckRows("Softmax", x, out);
  const LaunchScope scope("Softmax", {&x, &out});
  Check("Softmax", LaunchSoftmax(x.dtype(), x.size(0), x.size(1), x.raw_data(), log, out.raw_data(),
                                 scope.stream()));
}

void CudaBackend::SoftmaxBackward(const Tensor& y, const Tensor& gy, bool log, const Tensor& gx) {
  CheckRows("SoftmaxBackward", y, gy);
  CheckRows("SoftmaxBackward", y, gx);
  const LaunchScope scope("SoftmaxBackward", {&y, &gy, &gx});
  Check("SoftmaxBackward",
        LaunchSoftmaxBackward(y.dtype(), y.size(0), y.size(1), y.raw_data(), gy.raw_data(), log,
                              gx.raw_data(), scope.stream()));
}

// ---- Cross-entropy.

void CudaBackend::CrossEntropyForward(const Tensor& logits, const Tensor& labels,
                                      int64_t ignore_index, const Tensor& losses,
                                      const Tensor& lse) {
  CheckCrossEntropyShapes("CrossEntropy", logits, labels, losses);
  CheckCrossEntropyShapes("CrossEntropy", logits, labels, lse);
  const LaunchScope scope("CrossEntropy", {&logits, &labels, &losses, &lse});
  const int64_t n = logits.size(0), v = logits.size(1);
  if (n == 0) return;
  LOOM_CHECK(v > 0, "CrossEntropy: logits %s have no classes", logits.ShapeString());
  const BadRowFlag flag(scope.device(), scope.stream());
  const CrossEntropyProblem p{.dtype = logits.dtype(),
                              .rows = n,
                              .vocab = v,
                              .logits = logits.raw_data(),
                              .labels = labels.data<int64_t>(),
                              .ignore_index = ignore_index,
                              .first_bad_row = flag.data()};
  const Tensor workspace = Scratch(scope.device(), CrossEntropyWorkspaceBytes(p));
  Check("CrossEntropy", LaunchCrossEntropyForward(p, losses.raw_data(), lse.raw_data(),
                                                  workspace.raw_data(), scope.stream()));
  CheckLabelsFlag("CrossEntropy", flag, labels, ignore_index, v);
}

void CudaBackend::CrossEntropyBackward(const Tensor& logits, const Tensor& labels,
                                       const Tensor& lse, const Tensor& grad_losses,
                                       int64_t ignore_index, const Tensor& glogits) {
  CheckCrossEntropyShapes("CrossEntropyBackward", logits, labels, lse);
  CheckCrossEntropyShapes("CrossEntropyBackward", logits, labels, grad_losses);
  LOOM_CHECK(glogits.sizes() == logits.sizes() && glogits.dtype() == logits.dtype() &&
                 glogits.is_contiguous(),
             "CrossEntropyBackward: glogits %s %s for logits %s %s", Name(glogits.dtype()),
             glogits.ShapeString(), Name(logits.dtype()), logits.ShapeString());
  const LaunchScope scope("CrossEntropyBackward", {&logits, &labels, &lse, &grad_losses, &glogits});
  const int64_t n = logits.size(0), v = logits.size(1);
  if (n == 0 || v == 0) return;
  const BadRowFlag flag(scope.device(), scope.stream());
  const CrossEntropyProblem p{.dtype = logits.dtype(),
                              .rows = n,
                              .vocab = v,
                              .logits = logits.raw_data(),
                              .labels = labels.data<int64_t>(),
                              .ignore_index = ignore_index,
                              .first_bad_row = flag.data()};
  Check("CrossEntropyBackward",
        LaunchCrossEntropyBackward(p, lse.raw_data(), grad_losses.raw_data(), glogits.raw_data(),
                                   scope.stream()));
  CheckLabelsFlag("CrossEntropyBackward", flag, labels, ignore_index, v);
}

// ---- Embedding.

void CudaBackend::EmbeddingForward(const Tensor& weight, const Tensor& ids, const Tensor& out) {
  LOOM_CHECK(weight.dim() == 2 && weight.is_contiguous(),
             "Embedding: weight must be a contiguous [V, D], got %s", weight.ShapeString());
  const int64_t vocab = weight.size(0), d = weight.size(1), n = out.size(0);
  LOOM_CHECK(
      out.dim() == 2 && out.size(1) == d && out.dtype() == weight.dtype() && out.is_contiguous(),
      "Embedding: out %s %s for weight %s %s", Name(out.dtype()), out.ShapeString(),
      Name(weight.dtype()), weight.ShapeString());
  CheckIds("Embedding", ids, n);
  const LaunchScope scope("Embedding", {&weight, &ids, &out});
  if (n == 0) return;
  const BadRowFlag flag(scope.device(), scope.stream());
  const EmbeddingProblem p{.rows = n,
                           .vocab = vocab,
                           .dim = d,
                           .ids = ids.raw_data(),
                           .ids_dtype = ids.dtype(),
                           .first_bad_row = flag.data()};
  Check("Embedding", LaunchEmbeddingForward(p, weight.dtype(), weight.raw_data(), out.raw_data(),
                                            scope.stream()));
  CheckIdsFlag("Embedding", flag, ids, vocab);
}

void CudaBackend::EmbeddingBackward(const Tensor& grad_out, const Tensor& ids,
                                    const Tensor& grad_weight) {
  LOOM_CHECK(grad_weight.dim() == 2 && grad_weight.is_contiguous() && grad_out.dim() == 2 &&
                 grad_out.is_contiguous() && grad_out.size(1) == grad_weight.size(1),
             "EmbeddingBackward: grad_out %s and grad_weight %s must be contiguous [N, D] and "
             "[V, D]",
             grad_out.ShapeString(), grad_weight.ShapeString());
  const int64_t vocab = grad_weight.size(0), d = grad_weight.size(1), n = grad_out.size(0);
  CheckIds("EmbeddingBackward", ids, n);
  const LaunchScope scope("EmbeddingBackward", {&grad_out, &ids, &grad_weight});
  if (n == 0 || d == 0) return;
  const BadRowFlag flag(scope.device(), scope.stream());
  const EmbeddingProblem p{.rows = n,
                           .vocab = vocab,
                           .dim = d,
                           .ids = ids.raw_data(),
                           .ids_dtype = ids.dtype(),
                           .first_bad_row = flag.data()};
  Check("EmbeddingBackward",
        LaunchEmbeddingBackward(p, grad_out.dtype(), grad_out.raw_data(), grad_weight.dtype(),
                                grad_weight.raw_data(), scope.stream()));
  CheckIdsFlag("EmbeddingBackward", flag, ids, vocab);
}

// ---- Random.

void CudaBackend::RandomUniform(const Tensor& out, uint64_t seed, uint64_t offset, double low,
                                double high) {
  LOOM_CHECK(out.is_contiguous(), "RandomUniform needs a contiguous output");
  const LaunchScope scope("RandomUniform", {&out});
  Check("RandomUniform", LaunchRandomUniform(out.raw_data(), out.dtype(), out.numel(), seed, offset,
                                             low, high, scope.stream()));
}

void CudaBackend::RandomNormal(const Tensor& out, uint64_t seed, uint64_t offset, double mean,
                               double stddev) {
  LOOM_CHECK(out.is_contiguous(), "RandomNormal needs a contiguous output");
  const LaunchScope scope("RandomNormal", {&out});
  Check("RandomNormal", LaunchRandomNormal(out.raw_data(), out.dtype(), out.numel(), seed, offset,
                                           mean, stddev, scope.stream()));
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
