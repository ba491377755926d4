// Byte copies between devices (host <-> CUDA, CUDA <-> CUDA).
// runtime/cuda registers the CUDA implementation; CPU-to-CPU is a memcpy.
#ifndef LOOM_RUNTIME_DEVICE_COPY_H_
#define LOOM_RUNTIME_DEVICE_COPY_H_

#include <cstddef>
#include <functional>

#include "absl/status/status.h"
#include "runtime/device.h"

namespace loom {

// Synchronous with respect to the host: returns when `dst` holds the bytes.
absl::Status CopyBytes(void* dst, Device dst_device, const void* src, Device src_device,
                       size_t nbytes);

using DeviceCopyFn = std::function<absl::Status(void* dst, Device dst_device, const void* src,
                                                Device src_device, size_t nbytes)>;
// Handles every copy that involves a device of `type`.
void RegisterDeviceCopy(DeviceType type, DeviceCopyFn fn);

}  // namespace loom

#endif  // LOOM_RUNTIME_DEVICE_COPY_H_
