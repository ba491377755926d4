#include "kernels/cuda/emulated_device.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_backend.h"
#include "runtime/allocator.h"
#include "runtime/backend.h"
#include "runtime/device_copy.h"
#include "runtime/status.h"

// A weak reference to a function of the real CUDA runtime (runtime/cuda/device.h):
// non-null exactly when //runtime/cuda is linked into this process, statically
// or as a shared library.
namespace loom::cuda {
bool IsAvailable() __attribute__((weak));
}  // namespace loom::cuda

namespace loom::cuda_emu {
namespace {

constexpr size_t kAlignment = 256;  // what cudaMalloc guarantees

class EmulatedDeviceAllocator final : public Allocator {
 public:
  absl::StatusOr<void*> Allocate(size_t nbytes) override {
    const size_t rounded = (std::max<size_t>(nbytes, 1) + kAlignment - 1) / kAlignment * kAlignment;
    void* p = std::aligned_alloc(kAlignment, rounded);
    if (p == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat("emulated CUDA allocation of ", nbytes,
                                                       " bytes failed (", current_.load(),
                                                       " bytes in use)"));
    }
    std::memset(p, 0xFF, rounded);  // fresh device memory reads as NaN
    const int64_t now = current_.fetch_add(int64_t(nbytes)) + int64_t(nbytes);
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    num_allocs_.fetch_add(1);
    return p;
  }

  void Deallocate(void* ptr, size_t nbytes) override {
    if (ptr == nullptr) return;
    std::free(ptr);
    current_.fetch_sub(int64_t(nbytes));
  }

  MemoryStats Stats() const override {
    MemoryStats s;
    s.current_bytes = current_.load();
    s.peak_bytes = peak_.load();
    s.reserved_bytes = s.current_bytes;
    s.peak_reserved_bytes = s.peak_bytes;
    s.num_allocs = s.num_system_allocs = num_allocs_.load();
    return s;
  }

  void ResetPeak() override { peak_.store(current_.load()); }

 private:
  std::atomic<int64_t> current_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> num_allocs_{0};
};

absl::Status CheckIndex(Device device) {
  if (device.is_cpu() || (device.index >= 0 && device.index < kNumEmulatedDevices)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(device.ToString(), " is not an emulated device (", kNumEmulatedDevices,
                   " emulated: cuda:0..cuda:", kNumEmulatedDevices - 1, ")"));
}

bool Register() {
  if (&loom::cuda::IsAvailable != nullptr) {
    std::fprintf(stderr,
                 "loom: //kernels/cuda:emulated_device and the real CUDA runtime (//runtime/cuda, "
                 "also brought in by //kernels/cuda:cuda_backend) are linked into one binary; "
                 "both register DeviceType::kCUDA. Link the emulated device for tests without a "
                 "GPU, or the real runtime, not both.\n");
    std::fflush(stderr);
    std::abort();
  }
  static EmulatedDeviceAllocator* allocators = new EmulatedDeviceAllocator[kNumEmulatedDevices];
  RegisterAllocatorFactory(DeviceType::kCUDA, [](int index) -> absl::StatusOr<Allocator*> {
    LOOM_RETURN_IF_ERROR(CheckIndex(Device::CUDA(index)));
    return &allocators[index];
  });
  RegisterDeviceCopy(DeviceType::kCUDA,
                     [](void* dst, Device dst_device, const void* src, Device src_device,
                        size_t nbytes) -> absl::Status {
                       LOOM_RETURN_IF_ERROR(CheckIndex(dst_device));
                       LOOM_RETURN_IF_ERROR(CheckIndex(src_device));
                       std::memmove(dst, src, nbytes);
                       return absl::OkStatus();
                     });
  static CudaBackend* backend = new CudaBackend();
  RegisterBackend(DeviceType::kCUDA, backend);
  return true;
}

const bool kRegistered = Register();

}  // namespace

bool EmulatedDeviceRegistered() { return kRegistered; }

}  // namespace loom::cuda_emu
