// Fused softmax cross-entropy on CUDA devices, forward and backward, with the
// semantics of Backend::CrossEntropyForward / CrossEntropyBackward.
//
//   CrossEntropyProblem p{.dtype = DType::kBF16, .rows = n, .vocab = v, .logits = logits,
//                         .labels = labels, .ignore_index = -100, .first_bad_row = flag};
//   void* workspace = ...;  // CrossEntropyWorkspaceBytes(p) bytes of device memory
//   LOOM_RETURN_IF_ERROR(LaunchCrossEntropyForward(p, losses, lse, workspace, stream));
//   LOOM_RETURN_IF_ERROR(LaunchCrossEntropyBackward(p, lse, grad_losses, glogits, stream));
//
// The [rows, vocab] probabilities are never stored: the forward keeps only
// each row's log-sum-exp, the backward recomputes softmax from the logits and
// it. The vocabulary is cut into chunks of kCrossEntropyChunk logits, each
// reduced by its own block to an online (max, sum of exp) pair, so shared
// memory stays bounded for a 128k vocabulary and a few rows still fill the
// GPU; a second kernel merges the chunks of a row in chunk order
// (deterministic). Rows of at most 1024 logits take a warp each instead.
// Loads are 16-byte vectors when the vocabulary size and pointers allow.
#ifndef LOOM_KERNELS_CUDA_CROSS_ENTROPY_H_
#define LOOM_KERNELS_CUDA_CROSS_ENTROPY_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/device/namespace.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

inline constexpr int64_t kCrossEntropyChunk = 8192;

struct CrossEntropyProblem {
  DType dtype = DType::kBF16;  // of the logits; statistics are in StatDTypeOf(dtype)
  int64_t rows = 0, vocab = 0;
  const void* logits = nullptr;     // [rows, vocab], contiguous
  const int64_t* labels = nullptr;  // [rows]
  int64_t ignore_index = -100;
  // Optional device int32 that the caller sets to INT32_MAX: rows whose label
  // is neither a class nor ignore_index lower it to their index (atomicMin,
  // so it ends as the first bad row). Their loss is NaN and their gradient
  // row has no one-hot term; no logit outside the row is ever read.
  int32_t* first_bad_row = nullptr;
};

// Device scratch of the forward: a (max, sum) pair per row and chunk when
// the vocabulary has more than one chunk, else 0.
size_t CrossEntropyWorkspaceBytes(const CrossEntropyProblem& p);

// losses [rows] (0 at ignored rows) and lse [rows], in the stat dtype.
absl::Status LaunchCrossEntropyForward(const CrossEntropyProblem& p, void* losses, void* lse,
                                       void* workspace, cudaStream_t stream);

// glogits [rows, vocab] (logits' dtype) = grad_losses[r] * (softmax(logits[r]) - onehot(label)),
// all zero at ignored rows; lse and grad_losses [rows] in the stat dtype.
absl::Status LaunchCrossEntropyBackward(const CrossEntropyProblem& p, const void* lse,
                                        const void* grad_losses, void* glogits,
                                        cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_CROSS_ENTROPY_H_
