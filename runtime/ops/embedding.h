// Embedding lookup: rows of a [V, D] table selected by integer ids.
#ifndef LOOM_RUNTIME_OPS_EMBEDDING_H_
#define LOOM_RUNTIME_OPS_EMBEDDING_H_

#include "runtime/tensor.h"

namespace loom {

// ids i32/i64 of any shape, weight [V, D] -> [..., D] in weight's dtype.
// An id outside [0, V) aborts with its value and flattened position. The
// weight gradient is a deterministic scatter-add, accumulated in f32 for
// 16-bit weights and returned in weight's dtype.
Tensor Embedding(const Tensor& ids, const Tensor& weight);

}  // namespace loom

#endif  // LOOM_RUNTIME_OPS_EMBEDDING_H_
