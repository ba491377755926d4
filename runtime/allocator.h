// Device memory allocators and the per-device memory statistics.
//
// Every byte a tensor owns comes from the Allocator of its device, so
// GetMemoryStats(device) is the truth tests and logs read (current and peak
// bytes in use). The CPU allocator hands out 64-byte aligned blocks; CUDA
// devices use the caching allocator in runtime/cuda.
#ifndef LOOM_RUNTIME_ALLOCATOR_H_
#define LOOM_RUNTIME_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "runtime/device.h"

namespace loom {

struct MemoryStats {
  int64_t current_bytes = 0;    // held by live allocations
  int64_t peak_bytes = 0;       // max of current_bytes since start or ResetPeak
  int64_t reserved_bytes = 0;   // obtained from the system (>= current with caching)
  int64_t peak_reserved_bytes = 0;
  int64_t num_allocs = 0;       // allocations served since start
  int64_t num_system_allocs = 0;  // allocations that reached the system (cache misses)
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns at least `nbytes` (nbytes may be 0) or ResourceExhausted.
  virtual absl::StatusOr<void*> Allocate(size_t nbytes) = 0;
  virtual void Deallocate(void* ptr, size_t nbytes) = 0;
  virtual MemoryStats Stats() const = 0;
  virtual void ResetPeak() = 0;
  // Returns cached blocks to the system; a no-op for non-caching allocators.
  virtual void EmptyCache() {}
};

inline constexpr size_t kCpuAlignment = 64;

Allocator* CpuAllocator();

// The allocator of `device`, or an error naming why the device is unusable.
absl::StatusOr<Allocator*> GetAllocator(Device device);

// Memory statistics of `device` (zeros for a device never used).
MemoryStats GetMemoryStats(Device device);
void ResetPeakMemoryStats(Device device);

// How runtime/cuda plugs its caching allocator in without a dependency cycle.
using AllocatorFactory = std::function<absl::StatusOr<Allocator*>(int device_index)>;
void RegisterAllocatorFactory(DeviceType type, AllocatorFactory factory);

}  // namespace loom

#endif  // LOOM_RUNTIME_ALLOCATOR_H_
