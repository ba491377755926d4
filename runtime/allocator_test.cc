// CPU allocator statistics (exact byte accounting, peak tracking), alignment,
// and wrapped storage (released by its owner, never counted).
#include "runtime/allocator.h"

#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/storage.h"
#include "runtime/tensor.h"

// Under --config=asan, let a failed huge allocation return null (as the real
// allocator does) instead of aborting, so the ResourceExhausted path is tested.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

namespace loom {
namespace {

int64_t CurrentBytes() { return GetMemoryStats(Device::CPU()).current_bytes; }

TEST(AllocatorTest, StatsMoveByExactlyTheAllocatedBytes) {
  const MemoryStats before = GetMemoryStats(Device::CPU());
  {
    absl::StatusOr<std::shared_ptr<Storage>> a = Storage::Allocate(1000, Device::CPU());
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ((*a)->nbytes(), 1000u);
    const MemoryStats mid = GetMemoryStats(Device::CPU());
    EXPECT_EQ(mid.current_bytes, before.current_bytes + 1000);
    EXPECT_EQ(mid.num_allocs, before.num_allocs + 1);
    EXPECT_GE(mid.peak_bytes, mid.current_bytes);
    EXPECT_GE(mid.reserved_bytes, mid.current_bytes);
    {
      Tensor t = Tensor::Empty({3, 7}, DType::kF64);
      EXPECT_EQ(CurrentBytes(), before.current_bytes + 1000 + 3 * 7 * 8);
    }
    EXPECT_EQ(CurrentBytes(), before.current_bytes + 1000);
  }
  EXPECT_EQ(CurrentBytes(), before.current_bytes);
}

TEST(AllocatorTest, PeakAndResetPeak) {
  ResetPeakMemoryStats(Device::CPU());
  const int64_t base = CurrentBytes();
  EXPECT_EQ(GetMemoryStats(Device::CPU()).peak_bytes, base);
  {
    Tensor big = Tensor::Empty({1 << 18}, DType::kF32);  // 1 MiB
    Tensor small = Tensor::Empty({10}, DType::kBF16);
    EXPECT_EQ(GetMemoryStats(Device::CPU()).peak_bytes, base + (1 << 20) + 20);
  }
  // The peak stays after the free until reset.
  EXPECT_EQ(CurrentBytes(), base);
  EXPECT_EQ(GetMemoryStats(Device::CPU()).peak_bytes, base + (1 << 20) + 20);
  {
    Tensor t = Tensor::Empty({100}, DType::kI32);
    EXPECT_EQ(GetMemoryStats(Device::CPU()).peak_bytes, base + (1 << 20) + 20);
  }
  ResetPeakMemoryStats(Device::CPU());
  EXPECT_EQ(GetMemoryStats(Device::CPU()).peak_bytes, base);
  {
    Tensor t = Tensor::Empty({100}, DType::kI32);
    EXPECT_EQ(GetMemoryStats(Device::CPU()).peak_bytes, base + 400);
  }
}

TEST(AllocatorTest, BlocksAre64ByteAligned) {
  std::vector<std::shared_ptr<Storage>> keep;
  for (size_t n : {0, 1, 3, 63, 64, 65, 1000, 4097}) {
    absl::StatusOr<std::shared_ptr<Storage>> s = Storage::Allocate(n, Device::CPU());
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_NE((*s)->data(), nullptr) << n;
    EXPECT_EQ(reinterpret_cast<uintptr_t>((*s)->data()) % kCpuAlignment, 0u) << n;
    EXPECT_EQ(kCpuAlignment, 64u);
    // The whole block is writable (ASan checks this under --config=asan).
    if (n > 0) static_cast<char*>((*s)->data())[n - 1] = 1;
    keep.push_back(*s);
  }
}

TEST(AllocatorTest, WrappedStorageIsReleasedByItsOwnerAndNotCounted) {
  std::vector<float> owned(32, 1.0f);
  int releases = 0;
  void* released_ptr = nullptr;
  const MemoryStats before = GetMemoryStats(Device::CPU());
  {
    std::shared_ptr<Storage> s =
        Storage::Wrap(owned.data(), owned.size() * sizeof(float), Device::CPU(), [&](void* p) {
          ++releases;
          released_ptr = p;
        });
    EXPECT_EQ(GetMemoryStats(Device::CPU()).current_bytes, before.current_bytes);
    EXPECT_EQ(GetMemoryStats(Device::CPU()).num_allocs, before.num_allocs);
    Tensor view = Tensor::FromStorage(s, 4, {4, 2}, {1, 4}, DType::kF32);
    s.reset();
    owned[4 + 1 * 4] = 5.0f;  // element (0, 1) of the view
    EXPECT_EQ(view.ToDoubles()[1], 5.0);
    EXPECT_EQ(releases, 0);  // the view still holds the storage
  }
  EXPECT_EQ(releases, 1);
  EXPECT_EQ(released_ptr, owned.data());
  EXPECT_EQ(GetMemoryStats(Device::CPU()).current_bytes, before.current_bytes);
  // A wrap without a release function is fine too.
  Storage::Wrap(owned.data(), 4, Device::CPU(), nullptr).reset();
}

TEST(AllocatorTest, ConcurrentAllocationsBalance) {
  const int64_t base = CurrentBytes();
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 2000; ++i) {
        Tensor x = Tensor::Empty({int64_t(1 + (i + t) % 97)}, DType::kF32);
        ASSERT_EQ(x.nbytes(), size_t(4 * (1 + (i + t) % 97)));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(CurrentBytes(), base);
}

TEST(AllocatorTest, DirectAllocatorInterface) {
  Allocator* a = CpuAllocator();
  const int64_t base = a->Stats().current_bytes;
  absl::StatusOr<void*> p = a->Allocate(123);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(a->Stats().current_bytes, base + 123);
  a->Deallocate(*p, 123);
  EXPECT_EQ(a->Stats().current_bytes, base);
  a->Deallocate(nullptr, 0);  // a no-op
  EXPECT_EQ(a->Stats().current_bytes, base);
  a->EmptyCache();  // a no-op for the CPU
  absl::StatusOr<Allocator*> got = GetAllocator(Device::CPU());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, a);
}

TEST(AllocatorTest, HugeAllocationReportsResourceExhausted) {
  const int64_t base = CurrentBytes();
  absl::StatusOr<Tensor> t = Tensor::TryEmpty({int64_t(1) << 60}, DType::kF32);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kResourceExhausted) << t.status();
  EXPECT_EQ(CurrentBytes(), base);
}

}  // namespace
}  // namespace loom
