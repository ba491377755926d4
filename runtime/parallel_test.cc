// ParallelFor: every index exactly once, chunk sizes honour the grain, nested
// calls run serially, and concurrent callers do not interfere.
#include "runtime/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace loom {
namespace {

class ParallelForTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    saved_threads_ = NumThreads();
    SetNumThreads(GetParam());
  }
  void TearDown() override { SetNumThreads(saved_threads_); }
  int saved_threads_ = 1;
};

TEST_P(ParallelForTest, UsesTheRequestedThreadCount) { EXPECT_EQ(NumThreads(), GetParam()); }

TEST_P(ParallelForTest, CoversEveryIndexExactlyOnce) {
  for (int64_t n : {0, 1, 2, 3, 7, 64, 1000, 100003}) {
    for (int64_t grain : {0, 1, 5, 64, 1000, 1 << 20}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::mutex mu;
      std::vector<std::pair<int64_t, int64_t>> chunks;
      ParallelFor(n, grain, [&](int64_t b, int64_t e) {
        {
          std::lock_guard<std::mutex> lock(mu);
          chunks.push_back({b, e});
        }
        for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(hits[size_t(i)].load(), 1) << "n=" << n << " grain=" << grain << " i=" << i;
      }
      if (n == 0) {
        EXPECT_TRUE(chunks.empty());
        continue;
      }
      // At most one chunk per thread; every chunk non-empty and, unless it is
      // the only one, at least `grain` long except possibly the last.
      EXPECT_LE(int(chunks.size()), NumThreads());
      std::sort(chunks.begin(), chunks.end());
      for (size_t c = 0; c < chunks.size(); ++c) {
        EXPECT_LT(chunks[c].first, chunks[c].second);
        if (c + 1 < chunks.size()) {
          EXPECT_GE(chunks[c].second - chunks[c].first, grain);
        }
      }
    }
  }
}

TEST_P(ParallelForTest, UsesSeveralThreadsForLargeWork) {
  std::mutex mu;
  std::vector<std::thread::id> ids;
  ParallelFor(GetParam(), 1, [&](int64_t, int64_t) {
    // Hold each chunk long enough that one thread cannot take them all.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::lock_guard<std::mutex> lock(mu);
    ids.push_back(std::this_thread::get_id());
  });
  std::sort(ids.begin(), ids.end());
  EXPECT_GE(std::unique(ids.begin(), ids.end()) - ids.begin(), GetParam() > 1 ? 2 : 1);
}

TEST_P(ParallelForTest, NestedCallsRunSeriallyWithoutDeadlock) {
  const int64_t outer = 16, inner = 1000;
  std::vector<std::atomic<int>> hits(size_t(outer * inner));
  std::atomic<int> inner_chunks{0};
  ParallelFor(outer, 1, [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      const std::thread::id caller = std::this_thread::get_id();
      ParallelFor(inner, 1, [&](int64_t ib, int64_t ie) {
        EXPECT_EQ(std::this_thread::get_id(), caller);  // serial: on the calling thread
        inner_chunks.fetch_add(1);
        for (int64_t i = ib; i < ie; ++i) hits[size_t(o * inner + i)].fetch_add(1);
      });
    }
  });
  EXPECT_EQ(inner_chunks.load(), outer);  // one chunk per nested call
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
}

TEST_P(ParallelForTest, ConcurrentCallersFromTwoThreads) {
  constexpr int64_t n = 50000;
  constexpr int kRounds = 50;
  std::vector<int64_t> sums(2, 0);
  std::vector<std::thread> callers;
  for (int t = 0; t < 2; ++t) {
    callers.emplace_back([&sums, t] {
      for (int r = 0; r < kRounds; ++r) {
        std::vector<int64_t> v(size_t(n), 0);
        ParallelFor(n, 100, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) v[size_t(i)] += i + t;
        });
        for (int64_t x : v) sums[size_t(t)] += x;
      }
    });
  }
  for (auto& c : callers) c.join();
  for (int t = 0; t < 2; ++t) {
    EXPECT_EQ(sums[size_t(t)], kRounds * (n * (n - 1) / 2 + n * t)) << "caller " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, ParallelForTest, ::testing::Values(1, 2, 3));

TEST(ParallelTest, SetNumThreadsClampsToOne) {
  const int saved = NumThreads();
  SetNumThreads(0);
  EXPECT_EQ(NumThreads(), 1);
  SetNumThreads(saved);
}

}  // namespace
}  // namespace loom
