// Registers the byte copies involving CUDA devices with runtime/device_copy.h.
//
// Copies are queued on the compute streams of the devices involved and then waited for, so they
// are ordered after the kernels that produced the source and finish before CopyBytes returns.
// (The legacy default stream would not do: the compute streams are non-blocking.)
#include <cuda_runtime_api.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/stream.h"
#include "runtime/device_copy.h"
#include "runtime/status.h"

namespace loom::cuda {
namespace {

// Memcpy on `device`'s compute stream, then wait for it.
absl::Status CopyOnComputeStream(int device, void* dst, const void* src, size_t nbytes,
                                 cudaMemcpyKind kind) {
  LOOM_ASSIGN_OR_RETURN(DeviceGuard guard, DeviceGuard::Switch(device));
  LOOM_ASSIGN_OR_RETURN(const Stream* stream, ComputeStream(device));
  LOOM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, nbytes, kind, stream->get()));
  return stream->Synchronize();
}

absl::Status CopyBetweenDevices(void* dst, int dst_device, const void* src, int src_device,
                                size_t nbytes) {
  // Work already queued on the destination may still read or write `dst`.
  LOOM_ASSIGN_OR_RETURN(const Stream* dst_stream, ComputeStream(dst_device));
  LOOM_RETURN_IF_ERROR(dst_stream->Synchronize());
  LOOM_ASSIGN_OR_RETURN(DeviceGuard guard, DeviceGuard::Switch(src_device));
  LOOM_ASSIGN_OR_RETURN(const Stream* src_stream, ComputeStream(src_device));
  // Goes through the host when peer access is not enabled, directly over NVLink/PCIe otherwise.
  LOOM_CUDA_RETURN_IF_ERROR(
      cudaMemcpyPeerAsync(dst, dst_device, src, src_device, nbytes, src_stream->get()));
  return src_stream->Synchronize();
}

absl::Status CopyInvolvingCuda(void* dst, Device dst_device, const void* src, Device src_device,
                               size_t nbytes) {
  if (dst_device.is_cuda()) LOOM_RETURN_IF_ERROR(CheckDevice(dst_device.index));
  if (src_device.is_cuda()) LOOM_RETURN_IF_ERROR(CheckDevice(src_device.index));
  if (dst_device.is_cuda() && src_device.is_cpu()) {
    return CopyOnComputeStream(dst_device.index, dst, src, nbytes, cudaMemcpyHostToDevice);
  }
  if (dst_device.is_cpu() && src_device.is_cuda()) {
    return CopyOnComputeStream(src_device.index, dst, src, nbytes, cudaMemcpyDeviceToHost);
  }
  if (dst_device.index == src_device.index) {
    return CopyOnComputeStream(dst_device.index, dst, src, nbytes, cudaMemcpyDeviceToDevice);
  }
  return CopyBetweenDevices(dst, dst_device.index, src, src_device.index, nbytes);
}

const bool kRegistered = [] {
  RegisterDeviceCopy(
      DeviceType::kCUDA,
      [](void* dst, Device dst_device, const void* src, Device src_device,
         size_t nbytes) -> absl::Status {
        absl::Status status = CopyInvolvingCuda(dst, dst_device, src, src_device, nbytes);
        if (status.ok()) return status;
        return absl::Status(
            status.code(),
            absl::StrCat("copy of ", nbytes, " bytes ", src_device.ToString(), " -> ",
                         dst_device.ToString(), " failed: ", status.message()));
      });
  return true;
}();

}  // namespace
}  // namespace loom::cuda
