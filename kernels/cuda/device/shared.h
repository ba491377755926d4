// Shared memory in kernels, identical on both build paths.
//
//   LOOM_SHARED(float, partial, 32);        // small per-block scratch
//   bf16* tile = DynamicShared<bf16>();      // the launch's dynamic shared memory
//
// Under the emulator both are fresh in every block and filled with 0xFF
// bytes (NaN for floats), so a read of shared memory nobody wrote shows up.
// Put large tiles in dynamic shared memory: it is bounds-checked, and more
// than 48 KiB of it needs SetMaxDynamicSharedMemory (device/launch.h).
#ifndef LOOM_KERNELS_CUDA_DEVICE_SHARED_H_
#define LOOM_KERNELS_CUDA_DEVICE_SHARED_H_

#if defined(LOOM_CUDA_EMULATION)

#define LOOM_SHARED(type, name, count)                                        \
  static thread_local ::loom::emu::device::StaticSharedSlot name##_loom_slot; \
  type* const name = static_cast<type*>(name##_loom_slot.Get(                 \
      sizeof(type) * (count), alignof(type), std::source_location::current()))

template <typename T>
inline T* DynamicShared() {
  return static_cast<T*>(::loom::emu::device::DynamicSharedBase());
}

#else

#define LOOM_SHARED(type, name, count) __shared__ __align__(16) type name[count]

template <typename T>
__device__ __forceinline__ T* DynamicShared() {
  extern __shared__ __align__(16) unsigned char loom_dynamic_smem[];
  return reinterpret_cast<T*>(loom_dynamic_smem);
}

#endif

#endif  // LOOM_KERNELS_CUDA_DEVICE_SHARED_H_
