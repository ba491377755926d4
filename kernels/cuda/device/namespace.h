// The namespace of kernels and their host launchers: loom::cuda on the GPU
// path, loom::cuda_emu when compiled for the CPU emulator. Launcher headers
// (gemm.h, ...) include this too, so host code calls whichever build it links.
#ifndef LOOM_KERNELS_CUDA_DEVICE_NAMESPACE_H_
#define LOOM_KERNELS_CUDA_DEVICE_NAMESPACE_H_

#if defined(LOOM_CUDA_EMULATION)
#define LOOM_CUDA_NAMESPACE cuda_emu
#else
#define LOOM_CUDA_NAMESPACE cuda
#endif

#endif  // LOOM_KERNELS_CUDA_DEVICE_NAMESPACE_H_
