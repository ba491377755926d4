// Registers loom::cuda::CudaBackend for DeviceType::kCUDA when
// //kernels/cuda:cuda_backend is linked (alwayslink). The emulated build
// (:cuda_backend_emu) has no such file: kernels/cuda/emulated_device.cc
// registers it, for tests.
#include "kernels/cuda/cuda_backend.h"

namespace loom::cuda {
namespace {

const bool kRegistered = [] {
  static CudaBackend* backend = new CudaBackend();
  RegisterBackend(DeviceType::kCUDA, backend);
  return true;
}();

}  // namespace
}  // namespace loom::cuda
