// Helpers of the CudaBackend implementation (cuda_backend*.cc): the device
// and stream of a call, tensor-to-launcher conversions, scratch tensors and
// the flag through which kernels report bad labels and ids.
//
//   const LaunchScope scope("Softmax", {&x, &out});      // checks devices, picks the stream
//   Check("Softmax", LaunchSoftmax(..., scope.stream()));
#ifndef LOOM_KERNELS_CUDA_CUDA_BACKEND_UTIL_H_
#define LOOM_KERNELS_CUDA_CUDA_BACKEND_UTIL_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <initializer_list>
#include <memory>

#include "absl/status/status.h"
#include "kernels/cuda/device/namespace.h"
#include "kernels/cuda/elementwise.h"
#include "runtime/backend.h"
#include "runtime/tensor.h"

namespace loom::LOOM_CUDA_NAMESPACE::backend_internal {

// One Backend call: checks that every defined tensor lives on one CUDA device
// (a CPU tensor here is a bug in the caller, and under emulation it would
// even appear to work), makes that device current for the scope on a real
// GPU, and gives the stream to launch on: the device's compute stream, or
// nullptr under the emulator.
class LaunchScope {
 public:
  LaunchScope(const char* op, std::initializer_list<const Tensor*> tensors);
  ~LaunchScope();
  LaunchScope(const LaunchScope&) = delete;
  LaunchScope& operator=(const LaunchScope&) = delete;

  Device device() const { return device_; }
  cudaStream_t stream() const { return stream_; }

 private:
  Device device_;
  cudaStream_t stream_ = nullptr;
  std::shared_ptr<void> guard_;  // restores the previous current device (GPU path)
};

// Aborts unless `t` is on `device` (for calls with a list of tensors).
void CheckOnDevice(const char* op, Device device, const Tensor& t);

// Aborts unless `t` is a [B, T, H, E] of `sizes` and `dtype` with a
// contiguous last dim (the layout of attention and RoPE operands).
void CheckBth(const char* op, const char* name, const Tensor& t, DimsRef sizes, DType dtype);

// A contiguous copy of `t` on its device, made by `backend`.
Tensor ContiguousCopy(Backend& backend, const Tensor& t);

// Aborts with `op` and the status message unless `status` is OK.
void Check(const char* op, const absl::Status& status);

// The launcher view of a tensor (device pointer, dtype, strides).
inline ConstArray In(const Tensor& t) {
  return {.data = t.raw_data(), .dtype = t.dtype(), .strides = t.strides()};
}
inline MutableArray Out(const Tensor& t) {
  return {.data = t.raw_data(), .dtype = t.dtype(), .strides = t.strides()};
}

// Device scratch of at least `bytes` bytes, 16-byte aligned; freed (in stream
// order on a GPU) when the tensor goes away.
Tensor Scratch(Device device, size_t bytes);

// A device int32 that kernels lower to the index of the first bad row
// (cross_entropy.h, embedding.h). Starts at INT32_MAX.
class BadRowFlag {
 public:
  BadRowFlag(Device device, cudaStream_t stream);
  int32_t* data() const { return flag_.data<int32_t>(); }
  // Copies the flag to the host (waits for the kernels): -1 when no row was bad.
  int64_t FirstBadRow() const;

 private:
  Tensor flag_;
};

}  // namespace loom::LOOM_CUDA_NAMESPACE::backend_internal

#endif  // LOOM_KERNELS_CUDA_CUDA_BACKEND_UTIL_H_
