#include "runtime/cuda/device.h"

#include <cuda_runtime_api.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/status.h"

namespace loom::cuda {
namespace {

struct Availability {
  int count = 0;
  absl::Status reason;  // OkStatus when count > 0
};

const Availability& Probe() {
  static const Availability* probe = [] {
    auto* a = new Availability;
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      // A failed probe leaves a (non-sticky) error behind; clear it so that later
      // cudaGetLastError() checks do not report it against an unrelated call.
      cudaGetLastError();
      a->reason = absl::FailedPreconditionError(
          absl::StrCat("no usable CUDA device (", cudaGetErrorString(err), ")"));
    } else if (count <= 0) {
      a->reason = absl::FailedPreconditionError("no usable CUDA device (device count is 0)");
    } else {
      a->count = count;
    }
    if (!a->reason.ok()) {
      std::fprintf(stderr, "loom: %s; using the CPU\n", std::string(a->reason.message()).c_str());
      std::fflush(stderr);
    }
    return a;
  }();
  return *probe;
}

}  // namespace

bool IsAvailable() { return Probe().count > 0; }

int DeviceCount() { return Probe().count; }

absl::Status UnavailableReason() { return Probe().reason; }

absl::Status CheckDevice(int index) {
  const Availability& a = Probe();
  if (!a.reason.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cuda:", index, " is not usable: ", a.reason.message()));
  }
  if (index < 0 || index >= a.count) {
    return absl::InvalidArgumentError(
        absl::StrCat("cuda:", index, " does not exist: ", a.count, " CUDA device(s) visible"));
  }
  return absl::OkStatus();
}

Device DefaultDevice() { return IsAvailable() ? Device::CUDA(0) : Device::CPU(); }

absl::StatusOr<int> CurrentDevice() {
  LOOM_RETURN_IF_ERROR(UnavailableReason());
  int device = 0;
  LOOM_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  return device;
}

absl::StatusOr<DeviceGuard> DeviceGuard::Switch(int device) {
  LOOM_RETURN_IF_ERROR(CheckDevice(device));
  int previous = 0;
  LOOM_CUDA_RETURN_IF_ERROR(cudaGetDevice(&previous));
  if (previous == device) return DeviceGuard(previous, /*restore=*/false);
  LOOM_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  return DeviceGuard(previous, /*restore=*/true);
}

DeviceGuard::DeviceGuard(DeviceGuard&& other) noexcept
    : previous_(other.previous_), restore_(other.restore_) {
  other.restore_ = false;
}

DeviceGuard::~DeviceGuard() {
  if (restore_) LOOM_CUDA_CHECK(cudaSetDevice(previous_));
}

}  // namespace loom::cuda
