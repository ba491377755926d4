// Losses. CrossEntropy is fused: it never stores softmax probabilities, only
// one log-sum-exp per token, and its backward recomputes softmax row by row.
#ifndef LOOM_RUNTIME_OPS_LOSS_H_
#define LOOM_RUNTIME_OPS_LOSS_H_

#include <cstdint>

#include "runtime/tensor.h"

namespace loom {

enum class Reduction { kMean, kSum, kNone };

// Cross-entropy of logits [..., V] against class labels i64 [...].
// Tokens whose label is `ignore_index` contribute 0 (loss and gradient).
//   kMean: sum over tokens / number of non-ignored tokens. When every token is
//          ignored the result is 0 with a zero gradient (PyTorch returns NaN;
//          a 0 keeps a fully-masked micro-batch from poisoning the step).
//   kSum:  sum over tokens (normalise across micro-batches by a global count,
//          see CountTrainableTokens).
//   kNone: per-token losses, shaped like labels.
// The result is f32 for f32/bf16/f16 logits and f64 for f64 logits. A label
// that is neither ignore_index nor in [0, V) aborts with its value and
// flattened position.
Tensor CrossEntropy(const Tensor& logits, const Tensor& labels,
                    Reduction reduction = Reduction::kMean, int64_t ignore_index = -100);

// Number of labels != ignore_index (copies labels to the host if needed).
int64_t CountTrainableTokens(const Tensor& labels, int64_t ignore_index = -100);

}  // namespace loom

#endif  // LOOM_RUNTIME_OPS_LOSS_H_
