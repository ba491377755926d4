// Which CUDA devices this process can use, and switching the current device.
//
// Every query goes through IsAvailable(), which asks the driver once and caches the answer.
// On a machine without a GPU or driver it prints one line to stderr (once per process) and
// Loom falls back to the CPU: DefaultDevice() is then Device::CPU().
#ifndef LOOM_RUNTIME_CUDA_DEVICE_H_
#define LOOM_RUNTIME_CUDA_DEVICE_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/device.h"

namespace loom::cuda {

// True when the CUDA runtime reports at least one device.
bool IsAvailable();

// Number of usable devices; 0 when IsAvailable() is false.
int DeviceCount();

// OkStatus when CUDA is available, else FailedPrecondition saying why (no driver, no device).
absl::Status UnavailableReason();

// OkStatus when `index` names a usable device, else an error naming the device and why not.
absl::Status CheckDevice(int index);

// cuda:0 when CUDA is available, else the CPU.
Device DefaultDevice();

// The calling thread's current CUDA device.
absl::StatusOr<int> CurrentDevice();

// Makes `device` current for its lifetime and restores the previous device on destruction.
//
//   LOOM_ASSIGN_OR_RETURN(DeviceGuard guard, DeviceGuard::Switch(dst.index));
class DeviceGuard {
 public:
  static absl::StatusOr<DeviceGuard> Switch(int device);

  DeviceGuard(DeviceGuard&& other) noexcept;
  DeviceGuard& operator=(DeviceGuard&&) = delete;
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  ~DeviceGuard();

  int previous_device() const { return previous_; }

 private:
  DeviceGuard(int previous, bool restore) : previous_(previous), restore_(restore) {}

  int previous_;
  bool restore_;  // false when nothing was switched or after a move
};

}  // namespace loom::cuda

#endif  // LOOM_RUNTIME_CUDA_DEVICE_H_
