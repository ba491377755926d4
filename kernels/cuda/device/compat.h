// The one header every kernel source (.cu) includes first. It makes the same
// file compile two ways:
//   - by nvcc for the GPU: the CUDA runtime, inline PTX wrappers and <<<>>>;
//   - by g++ with LOOM_CUDA_EMULATION defined, against the CPU emulator in
//     kernels/emu (one fiber per CUDA thread), which is how CI runs every
//     kernel without a GPU.
// Besides CUDA itself, kernels use only what this header brings in:
//   LOOM_SHARED / DynamicShared<T>()  shared memory        (device/shared.h)
//   Mma16816Bf16, LdMatrix, CpAsync16  tensor cores, copies (device/ptx.h)
//   Launch<Kernel>(config, args...)   every launch         (device/launch.h)
// and put their code in namespace loom::LOOM_CUDA_NAMESPACE (`cuda` on the
// GPU path, `cuda_emu` under emulation, so a binary can never mix the two).
#ifndef LOOM_KERNELS_CUDA_DEVICE_COMPAT_H_
#define LOOM_KERNELS_CUDA_DEVICE_COMPAT_H_

#if defined(LOOM_CUDA_EMULATION)
#if defined(__CUDACC__)
#error "LOOM_CUDA_EMULATION is for host compilers; nvcc builds the real kernels"
#endif
#include "kernels/emu/device_runtime.h"
#include "kernels/emu/ptx.h"
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#include "kernels/cuda/device/launch.h"
#include "kernels/cuda/device/namespace.h"
#include "kernels/cuda/device/ptx.h"
#include "kernels/cuda/device/shared.h"

#endif  // LOOM_KERNELS_CUDA_DEVICE_COMPAT_H_
