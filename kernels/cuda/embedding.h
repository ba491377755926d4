// Embedding lookup on CUDA devices: the forward row gather and a deterministic
// backward scatter-add, with the semantics of Backend::EmbeddingForward /
// EmbeddingBackward.
//
//   EmbeddingProblem p{.rows = n, .vocab = v, .dim = d, .ids = ids, .ids_dtype = DType::kI64,
//                      .first_bad_row = flag};
//   LOOM_RETURN_IF_ERROR(LaunchEmbeddingForward(p, DType::kBF16, weight, out, stream));
//   LOOM_RETURN_IF_ERROR(LaunchEmbeddingBackward(p, DType::kBF16, grad_out, DType::kF32,
//                                                grad_weight, stream));
//
// Forward: a block per token copies its weight row in 16-byte words when the
// row size and pointers allow (any dtype: the copy is bytes).
// Backward, without atomics: block (r, c) owns vocabulary range r and column
// chunk c of grad_weight. It scans the ids 128 at a time, compacts the tokens
// whose id falls in its range into shared memory (in token order, by ballot),
// and adds their grad_out rows to its columns one token after another. Every
// element therefore sums its tokens in token order, rounding to grad_weight's
// dtype after each add exactly as the CPU backend does: the result is
// bit-identical to kernels/cpu/embedding.cc, run to run and for any launch.
#ifndef LOOM_KERNELS_CUDA_EMBEDDING_H_
#define LOOM_KERNELS_CUDA_EMBEDDING_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/device/namespace.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

struct EmbeddingProblem {
  int64_t rows = 0;           // tokens N
  int64_t vocab = 0;          // V
  int64_t dim = 0;            // D
  const void* ids = nullptr;  // [N], i32 or i64
  DType ids_dtype = DType::kI64;
  // Optional device int32 that the caller sets to INT32_MAX: tokens whose id
  // is outside [0, V) lower it to their index (atomicMin: the first bad
  // token). The forward writes zeros for them; the backward skips them.
  int32_t* first_bad_row = nullptr;
};

// out [N, D] = weight [V, D] rows by id, contiguous, both of `dtype`.
absl::Status LaunchEmbeddingForward(const EmbeddingProblem& p, DType dtype, const void* weight,
                                    void* out, cudaStream_t stream);

// grad_weight [V, D] += grad_out [N, D] rows by id (both contiguous, floating).
absl::Status LaunchEmbeddingBackward(const EmbeddingProblem& p, DType grad_out_dtype,
                                     const void* grad_out, DType grad_weight_dtype,
                                     void* grad_weight, cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_EMBEDDING_H_
