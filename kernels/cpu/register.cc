// Registers the CPU backend when //kernels/cpu is linked (alwayslink).
#include "kernels/cpu/cpu_backend.h"

namespace loom::cpu {
namespace {
const bool kRegistered = [] {
  static CpuBackend backend;
  RegisterBackend(DeviceType::kCPU, &backend);
  return true;
}();
}  // namespace
}  // namespace loom::cpu
