// CUDA streams and events with absl::Status errors.
//
// Each device has one compute stream (ComputeStream), created on first use and kept for the
// life of the process: kernels, device copies and the caching allocator's default pool use it.
// Communication or prefetch work gets its own Stream::Create(...) and is ordered against the
// compute stream with events:
//
//   LOOM_ASSIGN_OR_RETURN(Event done, Event::Create(device));
//   LOOM_RETURN_IF_ERROR(done.Record(comm_stream));
//   LOOM_RETURN_IF_ERROR(done.MakeWait(compute_stream));  // compute waits, the host does not
//
// All streams are non-blocking: they never synchronize implicitly with the legacy default
// stream, so only explicit events order work between them.
#ifndef LOOM_RUNTIME_CUDA_STREAM_H_
#define LOOM_RUNTIME_CUDA_STREAM_H_

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace loom::cuda {

class Stream {
 public:
  // A new non-blocking stream on `device`. Lower `priority` numbers run first when streams
  // compete (CUDA clamps the value to the device's range).
  static absl::StatusOr<Stream> Create(int device, int priority = 0);

  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream();

  cudaStream_t get() const { return stream_; }
  int device() const { return device_; }

  // Blocks the host until all work queued so far has finished.
  absl::Status Synchronize() const;
  // True when all work queued so far has finished.
  absl::StatusOr<bool> Query() const;

 private:
  Stream(cudaStream_t stream, int device) : stream_(stream), device_(device) {}
  void Destroy();

  cudaStream_t stream_ = nullptr;
  int device_ = 0;
};

// The compute stream of `device` (see the file comment). The pointer stays valid for the life
// of the process. Fails when the device does not exist or CUDA is unavailable.
absl::StatusOr<const Stream*> ComputeStream(int device);

class Event {
 public:
  // `timing` enables ElapsedMs; events without timing are cheaper to record and wait on.
  static absl::StatusOr<Event> Create(int device, bool timing = false);

  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event();

  cudaEvent_t get() const { return event_; }
  int device() const { return device_; }

  // Captures the work queued on `stream` so far.
  absl::Status Record(cudaStream_t stream);
  absl::Status Record(const Stream& stream) { return Record(stream.get()); }
  // Work queued on `stream` after this call starts only when the recorded work has finished.
  absl::Status MakeWait(cudaStream_t stream) const;
  absl::Status MakeWait(const Stream& stream) const { return MakeWait(stream.get()); }
  // Blocks the host until the recorded work has finished.
  absl::Status Synchronize() const;
  // True when the recorded work has finished (or nothing was recorded).
  absl::StatusOr<bool> Query() const;
  // Milliseconds between `start` and this event; both need `timing` and must have completed.
  absl::StatusOr<float> ElapsedMsSince(const Event& start) const;

 private:
  Event(cudaEvent_t event, int device) : event_(event), device_(device) {}
  void Destroy();

  cudaEvent_t event_ = nullptr;
  int device_ = 0;
};

}  // namespace loom::cuda

#endif  // LOOM_RUNTIME_CUDA_STREAM_H_
