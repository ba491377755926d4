#include "runtime/cuda/caching_allocator.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/status.h"

namespace loom::cuda {
namespace {

// Requests beyond this cannot be rounded without overflow and exceed any device anyway.
constexpr size_t kMaxRequest = size_t{1} << 62;

size_t RoundUp(size_t n, size_t unit) { return (n + unit - 1) / unit * unit; }

std::string Bytes(int64_t n) {
  return absl::StrFormat("%d bytes (%.2f MiB)", n, double(n) / double(1 << 20));
}

}  // namespace

bool CachingAllocator::BlockOrder::operator()(const Block* a, const Block* b) const {
  return std::make_tuple(reinterpret_cast<uintptr_t>(a->stream), a->size,
                         reinterpret_cast<uintptr_t>(a->ptr)) <
         std::make_tuple(reinterpret_cast<uintptr_t>(b->stream), b->size,
                         reinterpret_cast<uintptr_t>(b->ptr));
}

CachingAllocator::CachingAllocator(std::string name, std::unique_ptr<RawMemory> raw,
                                   std::unique_ptr<StreamEvents> events,
                                   StreamHandle default_stream)
    : name_(std::move(name)),
      raw_(std::move(raw)),
      events_(std::move(events)),
      default_stream_(default_stream) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  ProcessEvents(/*wait=*/true);
  ReleaseCachedSegments();
  // What remains are splits of segments that still hold live blocks: the callers may still use
  // that memory, so only the bookkeeping goes.
  for (Pool* pool : {&small_free_, &large_free_}) {
    for (Block* b : *pool) delete b;
    pool->clear();
  }
  for (auto& [ptr, b] : live_) delete b;
  live_.clear();
}

size_t CachingAllocator::RoundSize(size_t nbytes) {
  return RoundUp(std::max<size_t>(nbytes, 1), kRoundBytes);
}

size_t CachingAllocator::SegmentSize(size_t block_bytes) {
  return block_bytes <= kSmallRequestMax ? kSmallSegmentBytes
                                         : RoundUp(block_bytes, kLargeRoundBytes);
}

absl::StatusOr<void*> CachingAllocator::Allocate(size_t nbytes) {
  return AllocateOn(nbytes, default_stream_);
}

absl::StatusOr<void*> CachingAllocator::AllocateOn(size_t nbytes, StreamHandle stream) {
  std::lock_guard<std::mutex> lock(mu_);
  if (nbytes > kMaxRequest) {
    return absl::ResourceExhaustedError(
        absl::StrCat("out of memory on ", name_, ": cannot allocate ", Bytes(int64_t(nbytes))));
  }
  ProcessEvents(/*wait=*/false);
  const size_t size = RoundSize(nbytes);
  LOOM_ASSIGN_OR_RETURN(Block * b, Obtain(size, size <= kSmallRequestMax, stream));
  SplitFor(b, size);
  b->allocated = true;
  live_[b->ptr] = b;
  stats_.current_bytes += int64_t(b->size);
  stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
  ++stats_.num_allocs;
  return static_cast<void*>(b->ptr);
}

CachingAllocator::Block* CachingAllocator::TakeFree(size_t size, bool small, StreamHandle stream) {
  Pool& pool = small ? small_free_ : large_free_;
  Block key;
  key.stream = stream;
  key.size = size;
  auto it = pool.lower_bound(&key);  // smallest block of this stream with size >= `size`
  if (it == pool.end() || (*it)->stream != stream) return nullptr;
  Block* b = *it;
  pool.erase(it);
  return b;
}

absl::StatusOr<CachingAllocator::Block*> CachingAllocator::Obtain(size_t size, bool small,
                                                                  StreamHandle stream) {
  if (Block* b = TakeFree(size, small, stream)) return b;
  absl::StatusOr<Block*> fresh = NewSegment(size, small, stream);
  if (fresh.ok() || !absl::IsResourceExhausted(fresh.status())) return fresh;

  // Out of memory: blocks awaiting other streams may free up a fit once those finish...
  ProcessEvents(/*wait=*/true);
  if (Block* b = TakeFree(size, small, stream)) return b;
  // ...otherwise give every unused segment (of any stream and pool) back and retry once.
  ReleaseCachedSegments();
  fresh = NewSegment(size, small, stream);
  if (fresh.ok() || !absl::IsResourceExhausted(fresh.status())) return fresh;
  return absl::ResourceExhaustedError(OutOfMemoryMessage(size, SegmentSize(size), fresh.status()));
}

absl::StatusOr<CachingAllocator::Block*> CachingAllocator::NewSegment(size_t size, bool small,
                                                                      StreamHandle stream) {
  const size_t segment = SegmentSize(size);
  LOOM_ASSIGN_OR_RETURN(void* ptr, raw_->Malloc(segment));
  stats_.reserved_bytes += int64_t(segment);
  stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
  ++stats_.num_system_allocs;
  auto* b = new Block;
  b->ptr = static_cast<char*>(ptr);
  b->size = segment;
  b->stream = stream;
  b->small = small;
  return b;
}

std::string CachingAllocator::OutOfMemoryMessage(size_t nbytes, size_t segment,
                                                 const absl::Status& raw) const {
  return absl::StrCat("out of memory on ", name_, ": cannot allocate ", Bytes(int64_t(nbytes)),
                      " (a new segment of ", Bytes(int64_t(segment)), ") after freeing the cache; ",
                      Bytes(stats_.current_bytes), " allocated, ", Bytes(stats_.reserved_bytes),
                      " reserved; system allocator said: ", raw.message());
}

void CachingAllocator::SplitFor(Block* b, size_t size) {
  const size_t rest = b->size - size;
  if (b->small ? rest < kRoundBytes : rest <= kSmallRequestMax) return;  // keep the slack
  auto* tail = new Block;
  tail->ptr = b->ptr + size;
  tail->size = rest;
  tail->stream = b->stream;
  tail->small = b->small;
  tail->prev = b;
  tail->next = b->next;
  if (b->next != nullptr) b->next->prev = tail;
  b->next = tail;
  b->size = size;
  // b came from the pool or a new segment, so its old neighbours were not free: no merge.
  PoolOf(tail).insert(tail);
}

void CachingAllocator::ReturnToPool(Block* b) {
  b->allocated = false;
  b->other_streams.clear();
  Pool& pool = PoolOf(b);
  if (Block* prev = b->prev; prev != nullptr && !prev->allocated) {
    pool.erase(prev);
    prev->size += b->size;
    prev->next = b->next;
    if (b->next != nullptr) b->next->prev = prev;
    delete b;
    b = prev;
  }
  if (Block* next = b->next; next != nullptr && !next->allocated) {
    pool.erase(next);
    b->size += next->size;
    b->next = next->next;
    if (next->next != nullptr) next->next->prev = b;
    delete next;
  }
  pool.insert(b);
}

void CachingAllocator::Deallocate(void* ptr, size_t nbytes) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  LOOM_CHECK(it != live_.end(), "%s allocator: Deallocate(%p, %d) of a pointer it did not hand out",
             name_, ptr, nbytes);
  Block* b = it->second;
  live_.erase(it);
  stats_.current_bytes -= int64_t(b->size);
  if (b->other_streams.empty()) {
    ReturnToPool(b);
    return;
  }
  for (StreamHandle s : b->other_streams) {
    absl::StatusOr<EventHandle> event = events_->Record(s);
    if (!event.ok()) {
      // Without the event nobody can tell when `s` is done with the block: keep it out of
      // circulation rather than risk handing out memory a kernel still writes.
      b->lost = true;
      if (!warned_event_failure_) {
        warned_event_failure_ = true;
        std::fprintf(stderr, "loom: %s allocator: %s; the block is not reused\n", name_.c_str(),
                     std::string(event.status().message()).c_str());
      }
      continue;
    }
    pending_.emplace_back(*event, b);
    ++b->pending_events;
  }
}

absl::Status CachingAllocator::RecordStream(void* ptr, StreamHandle stream) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  if (it == live_.end()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s allocator: RecordStream(%p) of a pointer that is not a live block", name_, ptr));
  }
  Block* b = it->second;
  if (stream != b->stream && std::find(b->other_streams.begin(), b->other_streams.end(), stream) ==
                                 b->other_streams.end()) {
    b->other_streams.push_back(stream);
  }
  return absl::OkStatus();
}

void CachingAllocator::ProcessEvents(bool wait) {
  size_t kept = 0;
  for (size_t i = 0; i < pending_.size(); ++i) {
    auto [event, b] = pending_[i];
    bool done = false;
    if (wait) {
      done = events_->Wait(event).ok();
    } else {
      absl::StatusOr<bool> is_done = events_->IsDone(event);
      done = is_done.ok() && *is_done;
    }
    if (!done) {
      pending_[kept++] = pending_[i];
      continue;
    }
    events_->Release(event);
    if (--b->pending_events == 0 && !b->lost) ReturnToPool(b);
  }
  pending_.resize(kept);
}

void CachingAllocator::ReleaseCachedSegments() {
  for (Pool* pool : {&small_free_, &large_free_}) {
    for (auto it = pool->begin(); it != pool->end();) {
      Block* b = *it;
      if (b->prev != nullptr || b->next != nullptr) {
        ++it;
        continue;
      }
      it = pool->erase(it);
      raw_->Free(b->ptr);
      stats_.reserved_bytes -= int64_t(b->size);
      delete b;
    }
  }
}

MemoryStats CachingAllocator::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::ResetPeak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_bytes = stats_.current_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

void CachingAllocator::EmptyCache() {
  std::lock_guard<std::mutex> lock(mu_);
  ProcessEvents(/*wait=*/false);
  ReleaseCachedSegments();
}

size_t CachingAllocator::BlockSize(void* ptr) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  return it == live_.end() ? 0 : it->second->size;
}

int64_t CachingAllocator::NumPendingFrees() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<const Block*> blocks;
  for (const auto& [event, b] : pending_) blocks.insert(b);
  return int64_t(blocks.size());
}

}  // namespace loom::cuda
