#include "runtime/allocator.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace loom {
namespace {

class CpuAllocatorImpl final : public Allocator {
 public:
  absl::StatusOr<void*> Allocate(size_t nbytes) override {
    const size_t rounded = (std::max<size_t>(nbytes, 1) + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
    void* p = std::aligned_alloc(kCpuAlignment, rounded);
    if (p == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "CPU allocation of ", nbytes, " bytes failed (", current_.load(), " bytes in use)"));
    }
    const int64_t now = current_.fetch_add(int64_t(nbytes)) + int64_t(nbytes);
    UpdateMax(peak_, now);
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
  static void UpdateMax(std::atomic<int64_t>& m, int64_t v) {
    int64_t cur = m.load();
    while (v > cur && !m.compare_exchange_weak(cur, v)) {
    }
  }

  std::atomic<int64_t> current_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> num_allocs_{0};
};

struct Registry {
  std::mutex mu;
  AllocatorFactory factories[kNumDeviceTypes];
};

Registry& GetRegistry() {
  static Registry* r = new Registry;
  return *r;
}

}  // namespace

Allocator* CpuAllocator() {
  static Allocator* a = new CpuAllocatorImpl;
  return a;
}

void RegisterAllocatorFactory(DeviceType type, AllocatorFactory factory) {
  Registry& r = GetRegistry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.factories[int(type)] = std::move(factory);
}

absl::StatusOr<Allocator*> GetAllocator(Device device) {
  if (device.is_cpu()) return CpuAllocator();
  AllocatorFactory factory;
  {
    Registry& r = GetRegistry();
    std::lock_guard<std::mutex> lock(r.mu);
    factory = r.factories[int(device.type)];
  }
  if (!factory) {
    return absl::FailedPreconditionError(
        absl::StrCat("no allocator for ", device.ToString(), ": this binary has no CUDA runtime linked"));
  }
  return factory(device.index);
}

MemoryStats GetMemoryStats(Device device) {
  absl::StatusOr<Allocator*> a = GetAllocator(device);
  return a.ok() ? (*a)->Stats() : MemoryStats{};
}

void ResetPeakMemoryStats(Device device) {
  absl::StatusOr<Allocator*> a = GetAllocator(device);
  if (a.ok()) (*a)->ResetPeak();
}

}  // namespace loom
