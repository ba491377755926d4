// RMSNorm over the last dim on CUDA devices, with the semantics and rounding
// of Backend::RmsNormForward / RmsNormBackward (runtime/backend.h; the CPU
// version is kernels/cpu/rmsnorm.cc, Hugging Face LlamaRMSNorm rounding):
//
//   rstd[r] = 1 / sqrt(mean_j(x[r][j]^2) + eps)        in the stat dtype S
//   y[r][j] = w[j] * round_T(x[r][j] * rstd[r])
//   gx[r][j] = rstd * (gy*w - x * rstd^2 * <gy*w, x[r]> / D)
//   gw[j]    = sum_r gy[r][j] * round_T(x[r][j] * rstd[r])   (overwritten)
//
// T is f32, f64, bf16 or f16; S (rstd) is f32, or f64 for f64 inputs; sums of
// squares and dot products accumulate in S. Rows have a row stride (in
// elements) and a contiguous last dim; w, rstd and gw are contiguous. Pointers
// are device pointers; launches are asynchronous on `stream`.
//
// The forward runs one row per warp (D <= 256 vectors) or per block, with
// 16-byte loads when the row stride and pointers allow. The backward writes
// per-block partial weight gradients to `workspace` and reduces them in a
// fixed order in a second kernel: results are bit-identical run to run.
//
//   RmsNormForwardArgs a{.dtype = DType::kBF16, .rows = n, .dim = d, .x = x, .x_stride = d,
//                        .weight = w, .eps = 1e-5, .y = y, .y_stride = d, .rstd = rstd};
//   LOOM_RETURN_IF_ERROR(LaunchRmsNormForward(a, stream));
#ifndef LOOM_KERNELS_CUDA_RMSNORM_H_
#define LOOM_KERNELS_CUDA_RMSNORM_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/device/namespace.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

struct RmsNormForwardArgs {
  DType dtype = DType::kBF16;  // of x, weight and y
  int64_t rows = 0, dim = 0;
  const void* x = nullptr;  // [rows, dim], row stride x_stride
  int64_t x_stride = 0;
  const void* weight = nullptr;  // [dim]
  double eps = 1e-6;
  void* y = nullptr;  // [rows, dim], row stride y_stride (may equal x)
  int64_t y_stride = 0;
  void* rstd = nullptr;  // [rows], stat dtype
  // Upper bound on the grid (0: the default, 65536 blocks); blocks loop over
  // the rows beyond it. Tests use small grids so that blocks handle many rows.
  int64_t max_blocks = 0;
};

struct RmsNormBackwardArgs {
  DType dtype = DType::kBF16;
  int64_t rows = 0, dim = 0;
  const void* gy = nullptr;  // [rows, dim]
  int64_t gy_stride = 0;
  const void* x = nullptr;  // the forward's input
  int64_t x_stride = 0;
  const void* weight = nullptr;
  const void* rstd = nullptr;  // as the forward wrote it
  void* gx = nullptr;          // [rows, dim] (may equal gy)
  int64_t gx_stride = 0;
  void* gw = nullptr;  // [dim], overwritten
  // RmsNormBackwardWorkspaceBytes(dtype, rows, dim) bytes, 16-byte aligned.
  void* workspace = nullptr;
};

absl::Status LaunchRmsNormForward(const RmsNormForwardArgs& a, cudaStream_t stream);

// Scratch for the per-block weight-gradient partials of LaunchRmsNormBackward.
size_t RmsNormBackwardWorkspaceBytes(DType dtype, int64_t rows, int64_t dim);

absl::Status LaunchRmsNormBackward(const RmsNormBackwardArgs& a, cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_RMSNORM_H_
