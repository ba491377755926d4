#include "runtime/device_copy.h"

#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace loom {
namespace {
// Built on first use: devices register from static initializers of other
// files, which may run before this file's globals would be initialized.
struct CopyRegistry {
  std::mutex mu;
  DeviceCopyFn copy[kNumDeviceTypes];
};
CopyRegistry& Registry() {
  static CopyRegistry* r = new CopyRegistry;
  return *r;
}
}  // namespace

void RegisterDeviceCopy(DeviceType type, DeviceCopyFn fn) {
  CopyRegistry& r = Registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.copy[int(type)] = std::move(fn);
}

absl::Status CopyBytes(void* dst, Device dst_device, const void* src, Device src_device,
                       size_t nbytes) {
  if (nbytes == 0) return absl::OkStatus();
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return absl::OkStatus();
  }
  const DeviceType other = dst_device.is_cpu() ? src_device.type : dst_device.type;
  DeviceCopyFn fn;
  {
    CopyRegistry& r = Registry();
    std::lock_guard<std::mutex> lock(r.mu);
    fn = r.copy[int(other)];
  }
  if (!fn) {
    return absl::FailedPreconditionError(
        absl::StrCat("no copy routine for ", src_device.ToString(), " -> ", dst_device.ToString()));
  }
  return fn(dst, dst_device, src, src_device, nbytes);
}

}  // namespace loom
