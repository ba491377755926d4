// A stream-aware caching allocator for device memory.
//
// cudaMalloc and cudaFree are slow and synchronize the device, so freed blocks are kept and
// reused. The caching logic is independent of CUDA: it runs over a RawMemory (the system
// allocator: cudaMalloc/cudaFree in production, a fake in tests) and StreamEvents (markers
// recorded on streams: CUDA events in production).
//
// Policy:
//  - Requests are rounded up to 512 B. Requests of at most 1 MiB are "small" and carved out of
//    2 MiB segments; larger ones get segments rounded up to a multiple of 2 MiB. Small and large
//    blocks live in separate pools so that small allocations do not fragment large segments.
//  - A block belongs to the stream it was allocated for and is reused only for requests on
//    that stream: work queued on one stream runs in order, so a block freed by the host may be
//    handed out again at once even if kernels using it are still queued on that stream.
//  - The smallest free block that fits is taken (best fit) and split when the rest is worth
//    keeping (>= 512 B in the small pool, > 1 MiB in the large pool); freed blocks merge with
//    free neighbours of the same segment.
//  - RecordStream(ptr, s) declares that another stream `s` uses the block. When such a block is
//    freed, an event is recorded on each such stream and the block returns to the pool only when
//    all of them have completed.
//  - When the system allocator runs out, the allocator waits for pending events, frees every
//    cached segment and retries once before reporting ResourceExhausted.
//
// Statistics count block sizes (requests after rounding, plus slack too small to split off), as
// that is the memory held.
#ifndef LOOM_RUNTIME_CUDA_CACHING_ALLOCATOR_H_
#define LOOM_RUNTIME_CUDA_CACHING_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/allocator.h"

namespace loom::cuda {

// Opaque handles: cudaStream_t / cudaEvent_t in production, any distinct values in tests.
using StreamHandle = void*;
using EventHandle = void*;

// The system allocator behind the cache.
class RawMemory {
 public:
  virtual ~RawMemory() = default;
  // ResourceExhausted when out of memory; any other error is passed to the caller as is.
  virtual absl::StatusOr<void*> Malloc(size_t nbytes) = 0;
  virtual void Free(void* ptr) = 0;
};

// Markers of "the work queued on a stream so far".
class StreamEvents {
 public:
  virtual ~StreamEvents() = default;
  virtual absl::StatusOr<EventHandle> Record(StreamHandle stream) = 0;
  virtual absl::StatusOr<bool> IsDone(EventHandle event) = 0;
  // Blocks until the event has completed.
  virtual absl::Status Wait(EventHandle event) = 0;
  // The event is no longer needed (it may be reused for a later Record).
  virtual void Release(EventHandle event) = 0;
};

class CachingAllocator final : public Allocator {
 public:
  static constexpr size_t kRoundBytes = 512;
  static constexpr size_t kSmallRequestMax = size_t{1} << 20;
  static constexpr size_t kSmallSegmentBytes = size_t{2} << 20;
  static constexpr size_t kLargeRoundBytes = size_t{2} << 20;

  // `name` (e.g. "cuda:0") appears in error messages. Allocate() serves `default_stream`.
  CachingAllocator(std::string name, std::unique_ptr<RawMemory> raw,
                   std::unique_ptr<StreamEvents> events, StreamHandle default_stream);
  // Returns cached memory to the system. Blocks still allocated stay valid (they are leaked).
  ~CachingAllocator() override;

  absl::StatusOr<void*> Allocate(size_t nbytes) override;
  absl::StatusOr<void*> AllocateOn(size_t nbytes, StreamHandle stream);
  void Deallocate(void* ptr, size_t nbytes) override;
  // Declares that `stream` (besides the allocating stream) uses the live block at `ptr`.
  absl::Status RecordStream(void* ptr, StreamHandle stream);

  MemoryStats Stats() const override;
  void ResetPeak() override;
  void EmptyCache() override;

  // Block size of a request: nbytes rounded up to kRoundBytes (at least one unit).
  static size_t RoundSize(size_t nbytes);
  // Size of the segment obtained from the system for a block of `block_bytes`.
  static size_t SegmentSize(size_t block_bytes);
  // Size of the live block at `ptr`; 0 when `ptr` is not a live block of this allocator.
  size_t BlockSize(void* ptr) const;
  // Blocks freed while other streams still use them, awaiting their events.
  int64_t NumPendingFrees() const;

 private:
  // A piece of a segment. Neighbours within the segment are linked so that free ones can merge;
  // a block without neighbours is a whole segment.
  struct Block {
    char* ptr = nullptr;
    size_t size = 0;
    StreamHandle stream = nullptr;  // the stream it was allocated for
    bool small = false;             // which pool it belongs to
    bool allocated = false;         // live, or freed and awaiting events
    bool lost = false;              // an event could not be recorded: never reuse
    int pending_events = 0;
    std::vector<StreamHandle> other_streams;  // from RecordStream
    Block* prev = nullptr;
    Block* next = nullptr;
  };
  struct BlockOrder {
    bool operator()(const Block* a, const Block* b) const;
  };
  using Pool = std::set<Block*, BlockOrder>;

  Pool& PoolOf(const Block* b) { return b->small ? small_free_ : large_free_; }
  Block* TakeFree(size_t size, bool small, StreamHandle stream);
  absl::StatusOr<Block*> Obtain(size_t size, bool small, StreamHandle stream);
  absl::StatusOr<Block*> NewSegment(size_t size, bool small, StreamHandle stream);
  void SplitFor(Block* b, size_t size);
  void ReturnToPool(Block* b);
  void ProcessEvents(bool wait);
  void ReleaseCachedSegments();
  std::string OutOfMemoryMessage(size_t nbytes, size_t segment, const absl::Status& raw) const;

  const std::string name_;
  const std::unique_ptr<RawMemory> raw_;
  const std::unique_ptr<StreamEvents> events_;
  const StreamHandle default_stream_;

  mutable std::mutex mu_;
  Pool small_free_;
  Pool large_free_;
  std::unordered_map<void*, Block*> live_;               // handed out to callers
  std::vector<std::pair<EventHandle, Block*>> pending_;  // freed, awaiting other streams
  MemoryStats stats_;
  bool warned_event_failure_ = false;
};

}  // namespace loom::cuda

#endif  // LOOM_RUNTIME_CUDA_CACHING_ALLOCATOR_H_
