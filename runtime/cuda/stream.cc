#include "runtime/cuda/stream.h"

#include <memory>
#include <mutex>
#include <vector>

#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device.h"
#include "runtime/status.h"

namespace loom::cuda {

absl::StatusOr<Stream> Stream::Create(int device, int priority) {
  LOOM_ASSIGN_OR_RETURN(DeviceGuard guard, DeviceGuard::Switch(device));
  cudaStream_t stream = nullptr;
  LOOM_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, priority));
  return Stream(stream, device);
}

Stream::Stream(Stream&& other) noexcept : stream_(other.stream_), device_(other.device_) {
  other.stream_ = nullptr;
}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    Destroy();
    stream_ = other.stream_;
    device_ = other.device_;
    other.stream_ = nullptr;
  }
  return *this;
}

Stream::~Stream() { Destroy(); }

void Stream::Destroy() {
  if (stream_ == nullptr) return;
  // cudaStreamDestroy returns at once; queued work still completes.
  LOOM_CUDA_CHECK(cudaStreamDestroy(stream_));
  stream_ = nullptr;
}

absl::Status Stream::Synchronize() const {
  LOOM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  return absl::OkStatus();
}

absl::StatusOr<bool> Stream::Query() const {
  const cudaError_t err = cudaStreamQuery(stream_);
  if (err == cudaErrorNotReady) return false;
  LOOM_CUDA_RETURN_IF_ERROR(err);
  return true;
}

absl::StatusOr<const Stream*> ComputeStream(int device) {
  LOOM_RETURN_IF_ERROR(CheckDevice(device));
  // One slot per device, filled under the lock on first use and never freed: kernels queued at
  // exit may still reference the stream.
  static std::mutex mu;
  static auto* streams = new std::vector<std::unique_ptr<Stream>>(DeviceCount());
  std::lock_guard<std::mutex> lock(mu);
  std::unique_ptr<Stream>& slot = (*streams)[device];
  if (slot == nullptr) {
    LOOM_ASSIGN_OR_RETURN(Stream stream, Stream::Create(device));
    slot = std::make_unique<Stream>(std::move(stream));
  }
  return slot.get();
}

absl::StatusOr<Event> Event::Create(int device, bool timing) {
  LOOM_ASSIGN_OR_RETURN(DeviceGuard guard, DeviceGuard::Switch(device));
  cudaEvent_t event = nullptr;
  LOOM_CUDA_RETURN_IF_ERROR(
      cudaEventCreateWithFlags(&event, timing ? cudaEventDefault : cudaEventDisableTiming));
  return Event(event, device);
}

Event::Event(Event&& other) noexcept : event_(other.event_), device_(other.device_) {
  other.event_ = nullptr;
}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    Destroy();
    event_ = other.event_;
    device_ = other.device_;
    other.event_ = nullptr;
  }
  return *this;
}

Event::~Event() { Destroy(); }

void Event::Destroy() {
  if (event_ == nullptr) return;
  LOOM_CUDA_CHECK(cudaEventDestroy(event_));
  event_ = nullptr;
}

absl::Status Event::Record(cudaStream_t stream) {
  // The event and the stream must be on the same device, which must be current.
  LOOM_ASSIGN_OR_RETURN(DeviceGuard guard, DeviceGuard::Switch(device_));
  LOOM_CUDA_RETURN_IF_ERROR(cudaEventRecord(event_, stream));
  return absl::OkStatus();
}

absl::Status Event::MakeWait(cudaStream_t stream) const {
  // Cross-device waits are allowed: the stream's device decides, the event may be anywhere.
  LOOM_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream, event_, 0));
  return absl::OkStatus();
}

absl::Status Event::Synchronize() const {
  LOOM_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(event_));
  return absl::OkStatus();
}

absl::StatusOr<bool> Event::Query() const {
  const cudaError_t err = cudaEventQuery(event_);
  if (err == cudaErrorNotReady) return false;
  LOOM_CUDA_RETURN_IF_ERROR(err);
  return true;
}

absl::StatusOr<float> Event::ElapsedMsSince(const Event& start) const {
  float ms = 0;
  LOOM_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

}  // namespace loom::cuda
