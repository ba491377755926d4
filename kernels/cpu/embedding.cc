// CPU embedding lookup (a row gather) and its backward (a scatter-add).
//
// The backward splits the work over the D columns, not over the tokens: each
// task owns a range of columns of every vocabulary row and adds the tokens'
// rows in token order. No two tasks touch the same element and each element
// sums in the same order, so the result is bit-identical for any thread count
// without atomics or sorting.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "runtime/parallel.h"

namespace loom::cpu {
namespace {

// Columns per backward task: wide enough to stream whole cache lines.
constexpr int64_t kColumnGrain = 64;

void CheckIds(const char* op, const Tensor& ids, int64_t n, int64_t vocab) {
  LOOM_CHECK((ids.dtype() == DType::kI32 || ids.dtype() == DType::kI64) && ids.dim() == 1 &&
                 ids.size(0) == n && ids.is_contiguous(),
             "%s: ids must be a contiguous i32/i64 [%d], got %s %s", op, n,
             std::string(DTypeName(ids.dtype())), ids.ShapeString());
  DispatchDType(ids.dtype(), [&](auto tag) {
    using I = decltype(tag);
    if constexpr (std::is_same_v<I, int32_t> || std::is_same_v<I, int64_t>) {
      const I* is = static_cast<const I*>(ids.raw_data());
      for (int64_t i = 0; i < n; ++i) {
        LOOM_CHECK(is[i] >= 0 && is[i] < vocab,
                   "%s: id %d at position %d (of %d flattened ids) is out of range for a "
                   "vocabulary of %d rows",
                   op, int64_t(is[i]), i, n, vocab);
      }
    }
  });
}

// ids as int64, whichever integer type they are stored in.
int64_t IdAt(const Tensor& ids, int64_t i) {
  return ids.dtype() == DType::kI32 ? int64_t(static_cast<const int32_t*>(ids.raw_data())[i])
                                    : static_cast<const int64_t*>(ids.raw_data())[i];
}

}  // namespace

void CpuBackend::EmbeddingForward(const Tensor& weight, const Tensor& ids, const Tensor& out) {
  LOOM_CHECK(weight.dim() == 2 && weight.is_contiguous(),
             "Embedding: weight must be a contiguous [V, D], got %s", weight.ShapeString());
  const int64_t vocab = weight.size(0), d = weight.size(1), n = out.size(0);
  LOOM_CHECK(
      out.dim() == 2 && out.size(1) == d && out.dtype() == weight.dtype() && out.is_contiguous(),
      "Embedding: out %s %s for weight %s %s", std::string(DTypeName(out.dtype())),
      out.ShapeString(), std::string(DTypeName(weight.dtype())), weight.ShapeString());
  CheckIds("Embedding", ids, n, vocab);
  const size_t row_bytes = size_t(d) * weight.element_size();
  const char* w = static_cast<const char*>(weight.raw_data());
  char* o = static_cast<char*>(out.raw_data());
  const int64_t grain = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(d, 1));
  ParallelFor(n, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      std::memcpy(o + size_t(i) * row_bytes, w + size_t(IdAt(ids, i)) * row_bytes, row_bytes);
    }
  });
}

void CpuBackend::EmbeddingBackward(const Tensor& grad_out, const Tensor& ids,
                                   const Tensor& grad_weight) {
  LOOM_CHECK(grad_weight.dim() == 2 && grad_weight.is_contiguous() && grad_out.dim() == 2 &&
                 grad_out.is_contiguous() && grad_out.size(1) == grad_weight.size(1),
             "EmbeddingBackward: grad_out %s and grad_weight %s must be contiguous [N, D] and "
             "[V, D]",
             grad_out.ShapeString(), grad_weight.ShapeString());
  const int64_t vocab = grad_weight.size(0), d = grad_weight.size(1), n = grad_out.size(0);
  CheckIds("EmbeddingBackward", ids, n, vocab);
  if (n == 0 || d == 0) return;
  // grad_weight may be wider than grad_out (f32 accumulation of bf16 grads).
  DispatchFloating(grad_out.dtype(), "EmbeddingBackward", [&](auto gtag) {
    using G = decltype(gtag);
    DispatchFloating(grad_weight.dtype(), "EmbeddingBackward", [&](auto wtag) {
      using W = decltype(wtag);
      using C = compute_t<W>;
      const G* go = static_cast<const G*>(grad_out.raw_data());
      W* gw = static_cast<W*>(grad_weight.raw_data());
      ParallelFor(d, kColumnGrain, [&](int64_t col_begin, int64_t col_end) {
        for (int64_t i = 0; i < n; ++i) {
          const G* src = go + i * d;
          W* dst = gw + IdAt(ids, i) * d;
          for (int64_t j = col_begin; j < col_end; ++j) {
            dst[j] = Store<W>(Load(dst[j]) + C(Load(src[j])));
          }
        }
      });
    });
  });
}

}  // namespace loom::cpu
