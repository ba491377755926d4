// SwiGLU, the gated activation of the Llama MLP, on CUDA devices, with the
// semantics and rounding of Backend::SwiGluForward / SwiGluBackward
// (runtime/backend.h; the CPU version is kernels/cpu/swiglu.cc):
//
//   out   = round_T(silu(gate)) * up,           silu(x) = x / (1 + exp(-x))
//   ggate = gout * up * s * (1 + gate * (1 - s)), s = 1 / (1 + exp(-gate))
//   gup   = gout * round_T(silu(gate))
//
// computed in f32 for bf16/f16 (f64 for f64). All tensors are [rows, cols]
// with their own row stride (in elements) and a contiguous last dim, so gate
// and up can be the two halves of one fused gate_up projection; outputs may
// alias inputs of the same layout (in place). Pointers are device pointers;
// launches are asynchronous on `stream`. One 16-byte vector per thread and
// operand where the layout allows, grid-stride over the whole matrix.
//
//   SwiGluArgs a{.dtype = DType::kBF16, .rows = n, .cols = f, .gate = gu, .gate_stride = 2 * f,
//                .up = gu + f, .up_stride = 2 * f, .out = h, .out_stride = f};
//   LOOM_RETURN_IF_ERROR(LaunchSwiGluForward(a, stream));
#ifndef LOOM_KERNELS_CUDA_SWIGLU_H_
#define LOOM_KERNELS_CUDA_SWIGLU_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/device/namespace.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

struct SwiGluArgs {
  DType dtype = DType::kBF16;  // of every tensor
  int64_t rows = 0, cols = 0;
  const void* gate = nullptr;
  int64_t gate_stride = 0;
  const void* up = nullptr;
  int64_t up_stride = 0;
  void* out = nullptr;
  int64_t out_stride = 0;
};

struct SwiGluBackwardArgs {
  DType dtype = DType::kBF16;
  int64_t rows = 0, cols = 0;
  const void* gate = nullptr;  // the forward's inputs
  int64_t gate_stride = 0;
  const void* up = nullptr;
  int64_t up_stride = 0;
  const void* gout = nullptr;  // gradient of out
  int64_t gout_stride = 0;
  void* ggate = nullptr;  // gradients of gate and up
  int64_t ggate_stride = 0;
  void* gup = nullptr;
  int64_t gup_stride = 0;
};

absl::Status LaunchSwiGluForward(const SwiGluArgs& a, cudaStream_t stream);
absl::Status LaunchSwiGluBackward(const SwiGluBackwardArgs& a, cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_SWIGLU_H_
