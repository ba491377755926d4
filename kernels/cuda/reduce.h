// Reductions on CUDA devices (sum, mean, max, min, sum of squares) over any
// set of dims, with the semantics of Backend::Reduce (runtime/backend.h):
// accumulation in f64, NaN-propagating max/min, the result converted to the
// output's dtype (which may differ from the input's, e.g. f64 for norms).
//
//   ReduceProblem p{.op = ReduceOp::kSum, .sizes = {8, 1024}, .reduce_dim = {false, true},
//                   .x = x, .x_dtype = DType::kBF16, .x_strides = {1024, 1},
//                   .out = out, .out_dtype = DType::kF32};
//   LOOM_ASSIGN_OR_RETURN(size_t bytes, ReduceWorkspaceBytes(p));
//   void* workspace = ...;  // `bytes` of device memory (8-byte aligned)
//   LOOM_RETURN_IF_ERROR(LaunchReduce(p, workspace, stream));
//
// Deterministic: the split of the work into blocks and every combine order
// depend on the shape alone (never on the device or on timing), and no float
// atomics are used, so a result is bit-identical run to run and GPU to GPU.
// Strategies, chosen from the merged layout:
//   rows     the reduced elements of an output are (nearly) contiguous: a warp
//            per output for short rows, else blocks of 256 threads, each over
//            a fixed chunk of the row;
//   columns  outputs are contiguous and the reduced dims are not (a sum over
//            the batch dim): a thread per output walks its column, coalesced
//            across threads, split into fixed chunks of rows;
// and partial results (f64) of the chunks of one output are combined in chunk
// order by a final kernel that also converts to the output dtype.
#ifndef LOOM_KERNELS_CUDA_REDUCE_H_
#define LOOM_KERNELS_CUDA_REDUCE_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/device/namespace.h"
#include "runtime/backend.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

struct ReduceProblem {
  ReduceOp op = ReduceOp::kSum;
  std::vector<int64_t> sizes;    // of x
  std::vector<bool> reduce_dim;  // per dim of x
  const void* x = nullptr;       // device memory, any arithmetic dtype, any strides
  DType x_dtype = DType::kF32;
  std::vector<int64_t> x_strides;
  // Contiguous, x's rank with size 1 on the reduced dims; any arithmetic dtype.
  void* out = nullptr;
  DType out_dtype = DType::kF32;
};

// Device scratch LaunchReduce needs for `p` (f64 partials), or InvalidArgument.
absl::StatusOr<size_t> ReduceWorkspaceBytes(const ReduceProblem& p);

// Validates `p` and enqueues the reduction. `workspace` holds at least
// ReduceWorkspaceBytes(p) bytes of device memory, 8-byte aligned.
absl::Status LaunchReduce(const ReduceProblem& p, void* workspace, cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_REDUCE_H_
