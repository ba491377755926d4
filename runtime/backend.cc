#include "runtime/backend.h"

#include <atomic>

#include "runtime/status.h"

namespace loom {
namespace {
std::atomic<Backend*> g_backends[kNumDeviceTypes];
}  // namespace

Backend& GetBackend(Device device) {
  Backend* b = g_backends[int(device.type)].load();
  LOOM_CHECK(b != nullptr,
             "no kernels registered for %s: link //kernels/cpu (CPU) or //kernels/cuda (CUDA)",
             device.ToString());
  return *b;
}

bool HasBackend(DeviceType type) { return g_backends[int(type)].load() != nullptr; }

void RegisterBackend(DeviceType type, Backend* backend) { g_backends[int(type)].store(backend); }

}  // namespace loom
