// An emulated GPU for tests: linking //kernels/cuda:emulated_device makes
// Device::CUDA(0) and Device::CUDA(1) usable on a machine without a GPU.
//
//   Tensor x = RandomNormalTensor({4, 8}, DType::kBF16).CopyTo(Device::CUDA(0)).value();
//   Tensor y = Silu(x);      // the real CUDA kernel source, run by the CPU emulator
//   y.ToDoubles();           // device-to-host copy (a memcpy)
//
// At static initialization it registers, for DeviceType::kCUDA:
//   - an allocator of host memory with the memory statistics of a device
//     (GetMemoryStats(Device::CUDA(i))), 256-byte aligned like cudaMalloc,
//     every new block filled with 0xFF bytes (NaN for floats) so that a kernel
//     reading memory nobody wrote shows up in results;
//   - the device copy routine (a memcpy, synchronous like runtime/cuda's);
//   - loom::cuda_emu::CudaBackend (cuda_backend.h) on the emulated kernels,
//     which run to completion inside each launch (stream nullptr).
// Emulator options (scheduling policy, seed) are those of the calling thread
// (kernels/emu/emulator.h ScopedOptions).
//
// It cannot share a binary with the real CUDA runtime (//runtime/cuda, which
// //kernels/cuda:cuda_backend brings in): both would register kCUDA and which
// one wins would depend on static-initialization order. If both are linked,
// the process aborts at startup with a message saying so.
#ifndef LOOM_KERNELS_CUDA_EMULATED_DEVICE_H_
#define LOOM_KERNELS_CUDA_EMULATED_DEVICE_H_

#include "runtime/device.h"

namespace loom::cuda_emu {

inline constexpr int kNumEmulatedDevices = 2;

// True once the registrations above have run (always, in a binary that links
// this library); for tests that want to assert they run emulated.
bool EmulatedDeviceRegistered();

}  // namespace loom::cuda_emu

#endif  // LOOM_KERNELS_CUDA_EMULATED_DEVICE_H_
