// Softmax and log-softmax over the last dim on CUDA devices, forward and
// backward, with the semantics of Backend::Softmax / SoftmaxBackward.
//
//   LOOM_RETURN_IF_ERROR(LaunchSoftmax(DType::kBF16, rows, cols, x, /*log=*/false, y, stream));
//   LOOM_RETURN_IF_ERROR(LaunchSoftmaxBackward(DType::kBF16, rows, cols, y, gy, false, gx,
//   stream));
//
// All arrays are contiguous [rows, cols] of one floating dtype. Rows of up to
// 1024 elements get a warp each (8 rows per block, shuffles only); longer rows
// a block of 256 threads each. The forward makes two passes over a row: one
// computing the max and the sum of exponentials together (online softmax),
// one writing. Loads are 16-byte vectors when the row length and the
// pointers allow. 16-bit inputs compute in f32, f64 in f64.
#ifndef LOOM_KERNELS_CUDA_SOFTMAX_H_
#define LOOM_KERNELS_CUDA_SOFTMAX_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/device/namespace.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

// out = softmax(x) (or log_softmax when `log`) over each row.
absl::Status LaunchSoftmax(DType dtype, int64_t rows, int64_t cols, const void* x, bool log,
                           void* out, cudaStream_t stream);

// gx from y = softmax(x) (log_softmax when `log`) and gy:
//   softmax:      gx = y * (gy - sum(gy * y))
//   log_softmax:  gx = gy - exp(y) * sum(gy)
absl::Status LaunchSoftmaxBackward(DType dtype, int64_t rows, int64_t cols, const void* y,
                                   const void* gy, bool log, void* gx, cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_SOFTMAX_H_
