// The per-device caching allocators over cudaMalloc/cudaFree and CUDA events.
//
// Linking //runtime/cuda registers them as the allocators of DeviceType::kCUDA, so
// Tensor::Empty(..., Device::CUDA(i)) and GetMemoryStats(Device::CUDA(i)) use them. Without a
// usable device the registered factory fails with the reason (see device.h).
#ifndef LOOM_RUNTIME_CUDA_CUDA_ALLOCATOR_H_
#define LOOM_RUNTIME_CUDA_CUDA_ALLOCATOR_H_

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/cuda/caching_allocator.h"

namespace loom::cuda {

// The allocator of `device`, created on first use; its default stream is the device's compute
// stream. Lives for the rest of the process.
absl::StatusOr<CachingAllocator*> DeviceAllocator(int device);

// Declares that `stream` uses the live block at `ptr` of `device` (see CachingAllocator).
absl::Status RecordStream(int device, void* ptr, cudaStream_t stream);

}  // namespace loom::cuda

#endif  // LOOM_RUNTIME_CUDA_CUDA_ALLOCATOR_H_
