#include "runtime/cuda/cuda_allocator.h"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/allocator.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/stream.h"
#include "runtime/status.h"

namespace loom::cuda {
namespace {

class CudaRawMemory final : public RawMemory {
 public:
  explicit CudaRawMemory(int device) : device_(device) {}

  absl::StatusOr<void*> Malloc(size_t nbytes) override {
    LOOM_ASSIGN_OR_RETURN(DeviceGuard guard, DeviceGuard::Switch(device_));
    void* ptr = nullptr;
    const cudaError_t err = cudaMalloc(&ptr, nbytes);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // out of memory is not sticky: clear it so later checks pass
      size_t free_bytes = 0, total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      return absl::ResourceExhaustedError(absl::StrCat("cudaMalloc(", nbytes, ") failed with ",
                                                       free_bytes, " of ", total_bytes,
                                                       " bytes free on the device"));
    }
    LOOM_CUDA_RETURN_IF_ERROR(err);
    return ptr;
  }

  void Free(void* ptr) override {
    absl::StatusOr<DeviceGuard> guard = DeviceGuard::Switch(device_);
    LOOM_CHECK_OK(guard.status());
    LOOM_CUDA_CHECK(cudaFree(ptr));
  }

 private:
  const int device_;
};

// Events without timing, recycled: creating one per freed block would cost a driver call each.
class CudaStreamEvents final : public StreamEvents {
 public:
  explicit CudaStreamEvents(int device) : device_(device) {}
  ~CudaStreamEvents() override {
    for (cudaEvent_t e : spare_) cudaEventDestroy(e);
  }

  absl::StatusOr<EventHandle> Record(StreamHandle stream) override {
    LOOM_ASSIGN_OR_RETURN(DeviceGuard guard, DeviceGuard::Switch(device_));
    cudaEvent_t event = nullptr;
    if (spare_.empty()) {
      LOOM_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    } else {
      event = spare_.back();
      spare_.pop_back();
    }
    const cudaError_t err = cudaEventRecord(event, static_cast<cudaStream_t>(stream));
    if (err != cudaSuccess) {
      spare_.push_back(event);
      LOOM_CUDA_RETURN_IF_ERROR(err);
    }
    return static_cast<EventHandle>(event);
  }

  absl::StatusOr<bool> IsDone(EventHandle event) override {
    const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(event));
    if (err == cudaErrorNotReady) return false;
    LOOM_CUDA_RETURN_IF_ERROR(err);
    return true;
  }

  absl::Status Wait(EventHandle event) override {
    LOOM_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(static_cast<cudaEvent_t>(event)));
    return absl::OkStatus();
  }

  // Called by the allocator under its lock, so spare_ needs no lock of its own.
  void Release(EventHandle event) override { spare_.push_back(static_cast<cudaEvent_t>(event)); }

 private:
  const int device_;
  std::vector<cudaEvent_t> spare_;
};

absl::StatusOr<CachingAllocator*> CreateDeviceAllocator(int device) {
  LOOM_ASSIGN_OR_RETURN(const Stream* compute, ComputeStream(device));
  return new CachingAllocator(absl::StrCat("cuda:", device),
                              std::make_unique<CudaRawMemory>(device),
                              std::make_unique<CudaStreamEvents>(device), compute->get());
}

const bool kRegistered = [] {
  RegisterAllocatorFactory(DeviceType::kCUDA, [](int device) -> absl::StatusOr<Allocator*> {
    LOOM_ASSIGN_OR_RETURN(CachingAllocator * allocator, DeviceAllocator(device));
    return allocator;
  });
  return true;
}();

}  // namespace

absl::StatusOr<CachingAllocator*> DeviceAllocator(int device) {
  LOOM_RETURN_IF_ERROR(CheckDevice(device));
  static std::mutex mu;
  static auto* allocators = new std::vector<CachingAllocator*>(DeviceCount(), nullptr);
  std::lock_guard<std::mutex> lock(mu);
  CachingAllocator*& slot = (*allocators)[device];
  if (slot == nullptr) {
    LOOM_ASSIGN_OR_RETURN(slot, CreateDeviceAllocator(device));
  }
  return slot;
}

absl::Status RecordStream(int device, void* ptr, cudaStream_t stream) {
  LOOM_ASSIGN_OR_RETURN(CachingAllocator * allocator, DeviceAllocator(device));
  return allocator->RecordStream(ptr, static_cast<StreamHandle>(stream));
}

}  // namespace loom::cuda
