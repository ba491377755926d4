// Tests of the caching logic with a fake system allocator and fake stream events, so that all
// of it runs without a GPU.
#include "runtime/cuda/caching_allocator.h"

#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::cuda {
namespace {

using ::testing::HasSubstr;

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;

// What the fakes did, shared with the test so it outlives the allocator that owns the fakes.
struct FakeDevice {
  size_t budget = SIZE_MAX;  // bytes the fake "device" has
  size_t in_use = 0;
  int mallocs = 0;
  int frees = 0;
  int failed_mallocs = 0;
  absl::Status forced_error;  // when set, Malloc fails with it
  std::map<void*, size_t> segments;

  struct FakeEvent {
    StreamHandle stream;
    bool done = false;
    bool released = false;
  };
  std::vector<FakeEvent> events;  // EventHandle = index + 1
  int waits = 0;

  // The fake streams' queued work finishes: every event recorded on `stream` so far completes.
  void CompleteStream(StreamHandle stream) {
    for (FakeEvent& e : events) {
      if (e.stream == stream) e.done = true;
    }
  }
  int live_events() const {
    int n = 0;
    for (const FakeEvent& e : events) n += e.released ? 0 : 1;
    return n;
  }
};

class FakeRawMemory final : public RawMemory {
 public:
  explicit FakeRawMemory(std::shared_ptr<FakeDevice> d) : d_(std::move(d)) {}

  absl::StatusOr<void*> Malloc(size_t nbytes) override {
    if (!d_->forced_error.ok()) return d_->forced_error;
    if (d_->in_use + nbytes > d_->budget) {
      ++d_->failed_mallocs;
      return absl::ResourceExhaustedError(absl::StrCat("fake device full (", nbytes, ")"));
    }
    void* p = std::malloc(nbytes);
    d_->in_use += nbytes;
    ++d_->mallocs;
    d_->segments[p] = nbytes;
    return p;
  }

  void Free(void* ptr) override {
    auto it = d_->segments.find(ptr);
    ASSERT_NE(it, d_->segments.end()) << "Free of a pointer Malloc did not return";
    d_->in_use -= it->second;
    d_->segments.erase(it);
    ++d_->frees;
    std::free(ptr);
  }

 private:
  std::shared_ptr<FakeDevice> d_;
};

class FakeEvents final : public StreamEvents {
 public:
  explicit FakeEvents(std::shared_ptr<FakeDevice> d) : d_(std::move(d)) {}

  absl::StatusOr<EventHandle> Record(StreamHandle stream) override {
    d_->events.push_back({stream});
    return reinterpret_cast<EventHandle>(uintptr_t(d_->events.size()));
  }
  absl::StatusOr<bool> IsDone(EventHandle event) override { return Get(event).done; }
  absl::Status Wait(EventHandle event) override {
    ++d_->waits;
    Get(event).done = true;  // the host blocks until the stream gets there
    return absl::OkStatus();
  }
  void Release(EventHandle event) override {
    EXPECT_FALSE(Get(event).released) << "event released twice";
    Get(event).released = true;
  }

 private:
  FakeDevice::FakeEvent& Get(EventHandle event) {
    return d_->events.at(reinterpret_cast<uintptr_t>(event) - 1);
  }
  std::shared_ptr<FakeDevice> d_;
};

StreamHandle FakeStream(int i) { return reinterpret_cast<StreamHandle>(uintptr_t(0x1000 + i)); }

class CachingAllocatorTest : public ::testing::Test {
 protected:
  CachingAllocatorTest() { Reset(SIZE_MAX); }

  void Reset(size_t budget) {
    alloc_.reset();
    dev_ = std::make_shared<FakeDevice>();
    dev_->budget = budget;
    alloc_ = std::make_unique<CachingAllocator>("fake:0", std::make_unique<FakeRawMemory>(dev_),
                                                std::make_unique<FakeEvents>(dev_), FakeStream(0));
  }

  char* Alloc(size_t n, StreamHandle stream = FakeStream(0)) {
    absl::StatusOr<void*> p = alloc_->AllocateOn(n, stream);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? static_cast<char*>(*p) : nullptr;
  }
  void Free(void* p, size_t n = 0) { alloc_->Deallocate(p, n); }

  std::shared_ptr<FakeDevice> dev_;
  std::unique_ptr<CachingAllocator> alloc_;
};

TEST(CachingAllocatorSizesTest, RoundsRequestsAndSegments) {
  EXPECT_EQ(CachingAllocator::RoundSize(0), 512u);
  EXPECT_EQ(CachingAllocator::RoundSize(1), 512u);
  EXPECT_EQ(CachingAllocator::RoundSize(512), 512u);
  EXPECT_EQ(CachingAllocator::RoundSize(513), 1024u);
  EXPECT_EQ(CachingAllocator::RoundSize(3 * kMiB + 1), 3 * kMiB + 512);
  EXPECT_EQ(CachingAllocator::SegmentSize(512), 2 * kMiB);
  EXPECT_EQ(CachingAllocator::SegmentSize(kMiB), 2 * kMiB);
  EXPECT_EQ(CachingAllocator::SegmentSize(kMiB + 512), 2 * kMiB);
  EXPECT_EQ(CachingAllocator::SegmentSize(2 * kMiB + 512), 4 * kMiB);
  EXPECT_EQ(CachingAllocator::SegmentSize(6 * kMiB), 6 * kMiB);
}

TEST_F(CachingAllocatorTest, BlocksHaveRoundedSizes) {
  char* a = Alloc(1);
  char* b = Alloc(1000);
  char* c = Alloc(0);
  EXPECT_EQ(alloc_->BlockSize(a), 512u);
  EXPECT_EQ(alloc_->BlockSize(b), 1024u);
  EXPECT_EQ(alloc_->BlockSize(c), 512u);
  EXPECT_EQ(alloc_->BlockSize(a + 1), 0u);  // not a block start
  EXPECT_EQ(alloc_->Stats().current_bytes, 2048);
  Free(a);
  Free(b);
  Free(c);
}

TEST_F(CachingAllocatorTest, ReusesFreedBlockWithoutSystemAllocation) {
  char* a = Alloc(1000);
  Free(a);
  char* b = Alloc(1000);
  EXPECT_EQ(a, b);
  EXPECT_EQ(dev_->mallocs, 1);
  MemoryStats s = alloc_->Stats();
  EXPECT_EQ(s.num_allocs, 2);
  EXPECT_EQ(s.num_system_allocs, 1);
  Free(b);
}

TEST_F(CachingAllocatorTest, SmallBlocksShareOneSegment) {
  std::vector<char*> ptrs;
  for (int i = 0; i < 4; ++i) ptrs.push_back(Alloc(1000));
  for (int i = 0; i + 1 < 4; ++i) EXPECT_EQ(ptrs[i + 1], ptrs[i] + 1024) << i;
  EXPECT_EQ(dev_->mallocs, 1);
  EXPECT_EQ(alloc_->Stats().reserved_bytes, int64_t(2 * kMiB));
  EXPECT_EQ(alloc_->Stats().current_bytes, 4 * 1024);
  for (char* p : ptrs) Free(p);
}

TEST_F(CachingAllocatorTest, SplitsBestFitAndMergesNeighbours) {
  char* a = Alloc(kKiB);
  char* b = Alloc(kKiB);
  char* c = Alloc(kKiB);
  ASSERT_EQ(b, a + kKiB);
  ASSERT_EQ(c, b + kKiB);

  // The freed 1 KiB hole is the best fit, not the large tail of the segment.
  Free(b);
  EXPECT_EQ(Alloc(kKiB), b);

  // a and b merge into one 2 KiB block, which then serves a 2 KiB request exactly.
  Free(a);
  Free(b);
  char* ab = Alloc(2 * kKiB);
  EXPECT_EQ(ab, a);
  EXPECT_EQ(alloc_->BlockSize(ab), 2 * kKiB);

  // Once everything is free the splits merge back into the whole segment, which EmptyCache can
  // then return.
  Free(ab);
  Free(c);
  EXPECT_EQ(dev_->mallocs, 1);
  alloc_->EmptyCache();
  EXPECT_EQ(dev_->frees, 1);
  EXPECT_EQ(dev_->in_use, 0u);
  EXPECT_EQ(alloc_->Stats().reserved_bytes, 0);
}

TEST_F(CachingAllocatorTest, LargeBlocksSplitOnlyWhenTheRestIsLarge) {
  char* big = Alloc(8 * kMiB);
  EXPECT_EQ(alloc_->BlockSize(big), 8 * kMiB);
  Free(big);

  // 3 MiB out of the cached 8 MiB: the 5 MiB rest is split off.
  char* three = Alloc(3 * kMiB);
  EXPECT_EQ(three, big);
  EXPECT_EQ(alloc_->BlockSize(three), 3 * kMiB);
  // 4 MiB from the 5 MiB rest: the 1 MiB slack stays in the block.
  char* four = Alloc(4 * kMiB);
  EXPECT_EQ(four, big + 3 * kMiB);
  EXPECT_EQ(alloc_->BlockSize(four), 5 * kMiB);
  EXPECT_EQ(dev_->mallocs, 1);

  // A fresh large segment is rounded up to 2 MiB; its 1 MiB slack is not split either.
  char* odd = Alloc(kMiB + 512);
  EXPECT_EQ(alloc_->BlockSize(odd), 2 * kMiB);
  EXPECT_EQ(dev_->segments.at(odd), 2 * kMiB);

  // Small requests never come from the large pool.
  Free(odd);
  char* small = Alloc(512);
  EXPECT_EQ(dev_->mallocs, 3);
  EXPECT_EQ(dev_->segments.at(small), 2 * kMiB);
  Free(small);
  Free(three);
  Free(four);
}

TEST_F(CachingAllocatorTest, TracksCurrentPeakAndReserved) {
  char* a = Alloc(3 * kMiB);  // 4 MiB segment, unsplit block of 4 MiB
  char* b = Alloc(1000);      // 2 MiB small segment, 1 KiB block
  MemoryStats s = alloc_->Stats();
  EXPECT_EQ(s.current_bytes, int64_t(4 * kMiB + 1024));
  EXPECT_EQ(s.peak_bytes, s.current_bytes);
  EXPECT_EQ(s.reserved_bytes, int64_t(6 * kMiB));
  EXPECT_EQ(s.peak_reserved_bytes, int64_t(6 * kMiB));
  EXPECT_EQ(s.num_allocs, 2);
  EXPECT_EQ(s.num_system_allocs, 2);

  Free(a);
  s = alloc_->Stats();
  EXPECT_EQ(s.current_bytes, 1024);
  EXPECT_EQ(s.peak_bytes, int64_t(4 * kMiB + 1024));
  EXPECT_EQ(s.reserved_bytes, int64_t(6 * kMiB));  // cached, not returned

  alloc_->EmptyCache();
  s = alloc_->Stats();
  EXPECT_EQ(s.reserved_bytes, int64_t(2 * kMiB));  // the small segment still holds b
  EXPECT_EQ(s.peak_reserved_bytes, int64_t(6 * kMiB));
  EXPECT_EQ(dev_->in_use, 2 * kMiB);

  alloc_->ResetPeak();
  s = alloc_->Stats();
  EXPECT_EQ(s.peak_bytes, 1024);
  EXPECT_EQ(s.peak_reserved_bytes, int64_t(2 * kMiB));
  EXPECT_EQ(s.num_allocs, 2);  // counters are not peaks

  char* c = Alloc(2000);
  s = alloc_->Stats();
  EXPECT_EQ(s.peak_bytes, 1024 + 2048);
  EXPECT_EQ(s.num_system_allocs, 2);  // served from the small segment
  Free(b);
  Free(c);
  EXPECT_EQ(alloc_->Stats().current_bytes, 0);
}

TEST_F(CachingAllocatorTest, FreesCacheAndRetriesWhenTheSystemIsOutOfMemory) {
  Reset(4 * kMiB);
  char* small = Alloc(kKiB);  // 2 MiB segment
  Free(small);                // cached: 2 MiB reserved, nothing in use

  // Needs a 4 MiB segment: only fits once the cached small segment is returned.
  char* big = Alloc(3 * kMiB);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(dev_->failed_mallocs, 1);
  EXPECT_EQ(dev_->frees, 1);
  EXPECT_EQ(alloc_->Stats().reserved_bytes, int64_t(4 * kMiB));

  // Nothing cached is left to free: a clear error with the sizes involved.
  absl::StatusOr<void*> more = alloc_->AllocateOn(3 * kMiB, FakeStream(0));
  ASSERT_FALSE(more.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(more.status())) << more.status();
  const std::string msg(more.status().message());
  EXPECT_THAT(msg, HasSubstr("out of memory on fake:0"));
  EXPECT_THAT(msg, HasSubstr("cannot allocate 3145728 bytes (3.00 MiB)"));
  EXPECT_THAT(msg, HasSubstr("4194304 bytes (4.00 MiB) allocated"));
  EXPECT_THAT(msg, HasSubstr("4194304 bytes (4.00 MiB) reserved"));
  EXPECT_THAT(msg, HasSubstr("fake device full"));
  EXPECT_EQ(dev_->failed_mallocs, 3);  // first try and the retry after emptying

  // The failure changed nothing: the held block is intact and freeing it works.
  EXPECT_EQ(alloc_->Stats().current_bytes, int64_t(4 * kMiB));
  Free(big);
  EXPECT_EQ(Alloc(3 * kMiB), big);
  Free(big);
}

TEST_F(CachingAllocatorTest, OtherSystemErrorsPassThroughWithoutRetry) {
  dev_->forced_error = absl::FailedPreconditionError("driver gone");
  absl::StatusOr<void*> p = alloc_->AllocateOn(100, FakeStream(0));
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(p.status()));
  EXPECT_EQ(p.status().message(), "driver gone");
}

TEST_F(CachingAllocatorTest, HugeRequestIsResourceExhausted) {
  absl::StatusOr<void*> p = alloc_->AllocateOn(SIZE_MAX - 10, FakeStream(0));
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(p.status()));
  EXPECT_EQ(dev_->mallocs, 0);
}

TEST_F(CachingAllocatorTest, StreamsHaveSeparatePools) {
  char* a = Alloc(kKiB, FakeStream(0));
  Free(a);
  char* b = Alloc(kKiB, FakeStream(1));
  EXPECT_EQ(dev_->mallocs, 2);
  EXPECT_NE(dev_->segments.count(b), 0u);  // a segment of its own
  Free(b);
  EXPECT_EQ(Alloc(kKiB, FakeStream(1)), b);
  // Allocate() serves the default stream given at construction.
  absl::StatusOr<void*> c = alloc_->Allocate(kKiB);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, a);
  Free(b);
  Free(*c);
}

TEST_F(CachingAllocatorTest, BlockUsedOnAnotherStreamWaitsForItsEvent) {
  char* x = Alloc(kKiB);
  ASSERT_TRUE(alloc_->RecordStream(x, FakeStream(1)).ok());
  ASSERT_TRUE(alloc_->RecordStream(x, FakeStream(1)).ok());  // recorded once
  Free(x);
  EXPECT_EQ(dev_->events.size(), 1u);
  EXPECT_EQ(dev_->events[0].stream, FakeStream(1));
  EXPECT_EQ(alloc_->NumPendingFrees(), 1);
  EXPECT_EQ(alloc_->Stats().current_bytes, 0);  // the caller no longer holds it

  // Stream 1 may still be using x: the same request gets other memory.
  char* y = Alloc(kKiB);
  EXPECT_NE(y, x);
  EXPECT_EQ(alloc_->NumPendingFrees(), 1);

  dev_->CompleteStream(FakeStream(1));
  char* z = Alloc(kKiB);
  EXPECT_EQ(z, x);
  EXPECT_EQ(alloc_->NumPendingFrees(), 0);
  EXPECT_EQ(dev_->live_events(), 0);
  EXPECT_EQ(dev_->waits, 0);  // nobody blocked
  EXPECT_EQ(dev_->mallocs, 1);
  Free(y);
  Free(z);
}

TEST_F(CachingAllocatorTest, BlockWaitsForEveryStreamThatUsedIt) {
  char* x = Alloc(kKiB);
  ASSERT_TRUE(alloc_->RecordStream(x, FakeStream(1)).ok());
  ASSERT_TRUE(alloc_->RecordStream(x, FakeStream(2)).ok());
  Free(x);
  EXPECT_EQ(dev_->events.size(), 2u);
  dev_->CompleteStream(FakeStream(1));
  char* y = Alloc(kKiB);
  EXPECT_NE(y, x);  // stream 2 is not done yet
  dev_->CompleteStream(FakeStream(2));
  EXPECT_EQ(Alloc(kKiB), x);
  Free(x);
  Free(y);
}

TEST_F(CachingAllocatorTest, RecordingTheAllocatingStreamNeedsNoEvent) {
  char* x = Alloc(kKiB);
  ASSERT_TRUE(alloc_->RecordStream(x, FakeStream(0)).ok());
  Free(x);
  EXPECT_TRUE(dev_->events.empty());
  EXPECT_EQ(Alloc(kKiB), x);
  Free(x);
}

TEST_F(CachingAllocatorTest, OutOfMemoryWaitsForPendingBlocks) {
  Reset(4 * kMiB);
  char* x = Alloc(4 * kMiB);
  ASSERT_TRUE(alloc_->RecordStream(x, FakeStream(1)).ok());
  Free(x);
  // No room for a new segment; the pending block fits once its event is waited for.
  char* y = Alloc(4 * kMiB);
  EXPECT_EQ(y, x);
  EXPECT_EQ(dev_->waits, 1);
  EXPECT_EQ(dev_->mallocs, 1);
  EXPECT_EQ(dev_->live_events(), 0);
  Free(y);
}

TEST_F(CachingAllocatorTest, EmptyCacheKeepsPendingBlocks) {
  char* x = Alloc(3 * kMiB);
  ASSERT_TRUE(alloc_->RecordStream(x, FakeStream(1)).ok());
  Free(x);
  alloc_->EmptyCache();
  EXPECT_EQ(dev_->frees, 0);  // stream 1 may still write to it
  dev_->CompleteStream(FakeStream(1));
  alloc_->EmptyCache();
  EXPECT_EQ(dev_->frees, 1);
  EXPECT_EQ(dev_->in_use, 0u);
}

TEST_F(CachingAllocatorTest, RecordStreamOfUnknownPointerIsAnError) {
  char* x = Alloc(kKiB);
  absl::Status s = alloc_->RecordStream(x + 512, FakeStream(1));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("not a live block"));
  Free(x);
  EXPECT_TRUE(absl::IsInvalidArgument(alloc_->RecordStream(x, FakeStream(1))));
}

TEST_F(CachingAllocatorTest, DestructorReturnsCachedMemory) {
  char* a = Alloc(kKiB);
  char* b = Alloc(5 * kMiB);
  ASSERT_TRUE(alloc_->RecordStream(b, FakeStream(1)).ok());
  Free(a);
  Free(b);
  alloc_.reset();
  EXPECT_EQ(dev_->in_use, 0u);
  EXPECT_EQ(dev_->frees, 2);
  EXPECT_EQ(dev_->live_events(), 0);
}

TEST_F(CachingAllocatorTest, DoubleFreeAborts) {
  char* x = Alloc(kKiB);
  Free(x);
  EXPECT_DEATH(Free(x), "did not hand out");
}

TEST_F(CachingAllocatorTest, ManyMixedAllocationsNeverOverlap) {
  // A deterministic pseudo-random mix of sizes and frees; live blocks must stay disjoint and
  // everything must merge back into whole segments at the end.
  std::map<char*, size_t> live;
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return uint32_t(state >> 33);
  };
  for (int step = 0; step < 2000; ++step) {
    if (live.empty() || next() % 3 != 0) {
      const size_t n = next() % 4 == 0 ? 1 + next() % (5 * kMiB) : 1 + next() % (64 * kKiB);
      char* p = Alloc(n, FakeStream(int(next() % 2)));
      ASSERT_NE(p, nullptr);
      const size_t size = alloc_->BlockSize(p);
      ASSERT_GE(size, n);
      auto after = live.lower_bound(p);
      if (after != live.end()) {
        ASSERT_LE(p + size, after->first);
      }
      if (after != live.begin()) {
        auto before = std::prev(after);
        ASSERT_LE(before->first + before->second, p);
      }
      live[p] = size;
    } else {
      auto it = live.begin();
      std::advance(it, next() % live.size());
      Free(it->first);
      live.erase(it);
    }
  }
  int64_t held = 0;
  for (auto& [p, size] : live) held += int64_t(size);
  EXPECT_EQ(alloc_->Stats().current_bytes, held);
  for (auto& [p, size] : live) Free(p);
  alloc_->EmptyCache();
  EXPECT_EQ(dev_->in_use, 0u);
  EXPECT_EQ(alloc_->Stats().reserved_bytes, 0);
  EXPECT_EQ(dev_->frees, dev_->mallocs);
}

}  // namespace
}  // namespace loom::cuda
