// Multi-tensor fused AdamW on CUDA devices, with the semantics of
// Backend::AdamW (runtime/backend.h; the CPU version is kernels/cpu/adamw.cc,
// whose f32 results are bit-identical to torch.optim.AdamW):
//
//   p = p * (1 - lr * wd)                                   decoupled weight decay
//   m = fma(g, 1 - b1, m * b1)
//   v = fma((1 - b2) * g, g, v * b2)
//   p = p + ((-lr / (1 - b1^step)) * m) / (sqrt(v) / sqrt(1 - b2^step) + eps)
//
// in the compute type C (f32, or f64 for f64 params), each operation rounded
// once as written (no other FMA), with the step scalars computed in double
// and rounded to C exactly as the CPU does: f32 results are bit-identical to
// the CPU backend's. Params are f32, f64, bf16 or f16 (updated in C and
// rounded back), grads any floating dtype, exp_avg / exp_avg_sq are C.
//
// One call updates any number of tensors with few launches: tensors are
// grouped by (param, grad) dtype, and each launch carries a chunk table of up
// to kAdamWTensorsPerLaunch tensors in its kernel arguments (no host-to-device
// copy); block b updates chunk b (65536 elements) of the launch, with 16-byte
// state accesses where the tensor's pointers allow. All tensors are contiguous
// device buffers; the launches are asynchronous on `stream`.
//
//   std::vector<AdamWTensor> ts = {{.param_dtype = DType::kBF16, .grad_dtype = DType::kF32,
//                                   .param = w, .grad = gw, .exp_avg = m, .exp_avg_sq = v,
//                                   .numel = n}, ...};
//   LOOM_RETURN_IF_ERROR(LaunchAdamW(ts, {.lr = 3e-4, .weight_decay = 0.1, .step = 10}, stream));
#ifndef LOOM_KERNELS_CUDA_ADAMW_H_
#define LOOM_KERNELS_CUDA_ADAMW_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "kernels/cuda/device/namespace.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

inline constexpr int kAdamWTensorsPerLaunch = 64;
inline constexpr int64_t kAdamWChunk = 65536;  // elements per block

struct AdamWTensor {
  DType param_dtype = DType::kF32;
  DType grad_dtype = DType::kF32;
  void* param = nullptr;
  const void* grad = nullptr;
  void* exp_avg = nullptr;     // f32 (f64 for f64 params)
  void* exp_avg_sq = nullptr;  // f32 (f64 for f64 params)
  int64_t numel = 0;
};

// The fields of loom::AdamWParams (runtime/backend.h).
struct AdamWStep {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  int64_t step = 1;  // 1-based, after increment, for bias correction
};

absl::Status LaunchAdamW(absl::Span<const AdamWTensor> tensors, const AdamWStep& step,
                         cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_ADAMW_H_
