// CPU fused cross-entropy over logits [N, V].
//
// The forward keeps only the log-sum-exp of each row; the backward recomputes
// softmax from the logits and that lse, so no [N, V] probability tensor is
// ever stored (V is 128k for Llama 3). Rows are independent tasks with
// sequential inner loops: results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "runtime/parallel.h"

namespace loom::cpu {
namespace {

// Checks the shapes and dtypes of logits, labels and a per-row statistic.
void CheckShapes(const char* op, const Tensor& logits, const Tensor& labels, const Tensor& stat) {
  LOOM_CHECK(logits.dim() == 2 && logits.is_contiguous(),
             "%s: logits must be a contiguous [N, V], got %s", op, logits.ShapeString());
  const int64_t n = logits.size(0);
  LOOM_CHECK(labels.dtype() == DType::kI64 && labels.dim() == 1 && labels.size(0) == n &&
                 labels.is_contiguous(),
             "%s: labels must be a contiguous i64 [%d], got %s %s", op, n,
             std::string(DTypeName(labels.dtype())), labels.ShapeString());
  LOOM_CHECK(stat.dim() == 1 && stat.size(0) == n && stat.dtype() == StatDTypeOf(logits.dtype()) &&
                 stat.is_contiguous(),
             "%s: expected a contiguous %s [%d] statistic, got %s %s", op,
             std::string(DTypeName(StatDTypeOf(logits.dtype()))), n,
             std::string(DTypeName(stat.dtype())), stat.ShapeString());
}

// Every label must be a class or ignore_index (an out-of-range label would
// read outside the row).
void CheckLabels(const char* op, const Tensor& labels, int64_t ignore_index, int64_t v) {
  const int64_t n = labels.size(0);
  const int64_t* ls = labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    LOOM_CHECK(ls[i] == ignore_index || (ls[i] >= 0 && ls[i] < v),
               "%s: label %d at position %d (of %d flattened tokens) is not in [0, %d) and is not "
               "ignore_index (%d)",
               op, ls[i], i, n, v, ignore_index);
  }
}

}  // namespace

void CpuBackend::CrossEntropyForward(const Tensor& logits, const Tensor& labels,
                                     int64_t ignore_index, const Tensor& losses,
                                     const Tensor& lse) {
  CheckShapes("CrossEntropy", logits, labels, losses);
  CheckShapes("CrossEntropy", logits, labels, lse);
  const int64_t n = logits.size(0), v = logits.size(1);
  CheckLabels("CrossEntropy", labels, ignore_index, v);
  if (n == 0) return;
  LOOM_CHECK(v > 0, "CrossEntropy: logits %s have no classes", logits.ShapeString());
  DispatchFloating(logits.dtype(), "CrossEntropy", [&](auto tag) {
    using T = decltype(tag);
    using S = compute_t<T>;  // the stat type: f32, or f64 for f64
    const T* xs = static_cast<const T*>(logits.raw_data());
    const int64_t* ls = labels.data<int64_t>();
    S* loss_out = losses.data<S>();
    S* lse_out = lse.data<S>();
    ParallelFor(n, RowGrain(v), [&](int64_t row_begin, int64_t row_end) {
      for (int64_t r = row_begin; r < row_end; ++r) {
        const T* xr = xs + r * v;
        S mx = -std::numeric_limits<S>::infinity();
        for (int64_t j = 0; j < v; ++j) mx = std::max(mx, Load(xr[j]));
        double sum = 0;
        for (int64_t j = 0; j < v; ++j) sum += double(std::exp(Load(xr[j]) - mx));
        const S row_lse = mx + S(std::log(sum));
        lse_out[r] = row_lse;
        loss_out[r] = ls[r] == ignore_index ? S(0) : row_lse - Load(xr[ls[r]]);
      }
    });
  });
}

void CpuBackend::CrossEntropyBackward(const Tensor& logits, const Tensor& labels, const Tensor& lse,
                                      const Tensor& grad_losses, int64_t ignore_index,
                                      const Tensor& glogits) {
  CheckShapes("CrossEntropyBackward", logits, labels, lse);
  CheckShapes("CrossEntropyBackward", logits, labels, grad_losses);
  LOOM_CHECK(glogits.sizes() == logits.sizes() && glogits.dtype() == logits.dtype() &&
                 glogits.is_contiguous(),
             "CrossEntropyBackward: glogits %s %s for logits %s %s",
             std::string(DTypeName(glogits.dtype())), glogits.ShapeString(),
             std::string(DTypeName(logits.dtype())), logits.ShapeString());
  const int64_t n = logits.size(0), v = logits.size(1);
  CheckLabels("CrossEntropyBackward", labels, ignore_index, v);
  if (n == 0 || v == 0) return;
  DispatchFloating(logits.dtype(), "CrossEntropyBackward", [&](auto tag) {
    using T = decltype(tag);
    using S = compute_t<T>;
    const T* xs = static_cast<const T*>(logits.raw_data());
    const int64_t* ls = labels.data<int64_t>();
    const S* lses = lse.data<S>();
    const S* gl = grad_losses.data<S>();
    T* gx = static_cast<T*>(glogits.raw_data());
    ParallelFor(n, RowGrain(v), [&](int64_t row_begin, int64_t row_end) {
      for (int64_t r = row_begin; r < row_end; ++r) {
        T* gr = gx + r * v;
        if (ls[r] == ignore_index) {
          std::fill(gr, gr + v, Store<T>(S(0)));
          continue;
        }
        const T* xr = xs + r * v;
        const S row_lse = lses[r], g = gl[r];
        for (int64_t j = 0; j < v; ++j) gr[j] = Store<T>(g * std::exp(Load(xr[j]) - row_lse));
        gr[ls[r]] = Store<T>(g * (std::exp(Load(xr[ls[r]]) - row_lse) - S(1)));
      }
    });
  });
}

}  // namespace loom::cpu
