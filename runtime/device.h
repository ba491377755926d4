// Where a tensor lives: the CPU or one CUDA device.
#ifndef LOOM_RUNTIME_DEVICE_H_
#define LOOM_RUNTIME_DEVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace loom {

enum class DeviceType : uint8_t { kCPU = 0, kCUDA = 1 };
inline constexpr int kNumDeviceTypes = 2;

struct Device {
  DeviceType type = DeviceType::kCPU;
  int index = 0;

  static constexpr Device CPU() { return {DeviceType::kCPU, 0}; }
  static constexpr Device CUDA(int i = 0) { return {DeviceType::kCUDA, i}; }

  bool is_cpu() const { return type == DeviceType::kCPU; }
  bool is_cuda() const { return type == DeviceType::kCUDA; }
  std::string ToString() const;  // "cpu", "cuda:1"
  friend bool operator==(const Device&, const Device&) = default;
};

// Parses "cpu", "cuda", "cuda:N".
absl::StatusOr<Device> ParseDevice(absl::string_view text);

}  // namespace loom

#endif  // LOOM_RUNTIME_DEVICE_H_
