#include "collectives/watchdog.h"

#include <atomic>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::collectives {
namespace {

using ::testing::HasSubstr;

struct Env {
  std::unique_ptr<StoreServer> server;
  Store store(int rank) { return *Store::Connect("127.0.0.1", server->port(), {.rank = rank}); }
};

Env Start() { return Env{*StoreServer::Start({})}; }

OpDescriptor AllGather(uint64_t seq) {
  OpDescriptor d;
  d.kind = OpKind::kAllGather;
  d.has_tensor = 1;
  d.dtype = uint8_t(DType::kBF16);
  d.count = 1024;
  d.out_count = 2048;
  d.seq = seq;
  return d;
}

WatchdogOptions Options(int rank) {
  return WatchdogOptions{.group = "dp",
                         .rank = rank,
                         .global_ranks = {4, 5},
                         .timeout = absl::Milliseconds(200),
                         .exit_on_hang = false,
                         .hang_grace = absl::Milliseconds(100),
                         .publish_interval = absl::Milliseconds(20)};
}

TEST(WatchdogTest, ReportNamesThePeerThatDidNotArrive) {
  Env env = Start();
  Watchdog me(env.store(4).WithPrefix("g/"), Options(0));
  Watchdog peer(env.store(5).WithPrefix("g/"), Options(1));
  peer.Begin(AllGather(6));
  peer.End(6);
  me.Begin(AllGather(7));
  absl::SleepFor(absl::Milliseconds(100));  // both published
  absl::Status st =
      me.FailureReport(AllGather(7), absl::DeadlineExceededError("Timed out"), absl::Seconds(2));
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(st.message(), HasSubstr("collective failed on group 'dp' (2 ranks) at rank 0: "
                                      "all_gather bf16 x 1024 -> 2048 (seq 7), 2.0 KiB, after 2s: "
                                      "Timed out"));
  EXPECT_THAT(st.message(), HasSubstr("rank 1 (global 5): did not arrive (last: all_gather bf16 "
                                      "x 1024 -> 2048 (seq 6), done)"));
}

TEST(WatchdogTest, AHangPastTheTimeoutIsAbortedOnce) {
  Env env = Start();
  std::atomic<int> aborts{0};
  Watchdog dog(env.store(4), Options(0), [&] { aborts.fetch_add(1); });
  const absl::Time start = absl::Now();
  dog.Begin(AllGather(0));
  while (aborts.load() == 0 && absl::Now() - start < absl::Seconds(5)) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  // timeout 200 ms + grace 100 ms; never before.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(aborts.load(), 1);
  dog.End(0);
}

TEST(WatchdogTest, ADeadPeerIsDetectedWhileAnOpRuns) {
  Env env = Start();
  std::atomic<int> aborts{0};
  WatchdogOptions o = Options(0);
  o.timeout = absl::Seconds(60);  // not a timeout: the peer's death
  Watchdog dog(env.store(4), o, [&] { aborts.fetch_add(1); });
  { Store peer = env.store(5); }  // rank 5's process "dies": its connection closes
  dog.Begin(AllGather(3));
  for (int i = 0; i < 100 && aborts.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(aborts.load(), 1);
  dog.End(3);
}

TEST(WatchdogTest, LosingTheStoreHostWhileAnOpRunsIsAFailureNotAHang) {
  // Rank 0 hosts the store; when it reports a failure and exits first, the others must still
  // end within seconds instead of waiting out the collective timeout.
  Env env = Start();
  std::atomic<int> aborts{0};
  WatchdogOptions o = Options(1);
  o.timeout = absl::Seconds(60);
  Watchdog dog(env.store(5), o, [&] { aborts.fetch_add(1); });
  dog.Begin(AllGather(2));
  env.server.reset();  // the store's host exits
  const absl::Time start = absl::Now();
  while (aborts.load() == 0 && absl::Now() - start < absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(aborts.load(), 1);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  dog.End(2);
}

TEST(WatchdogTest, MismatchReportsKeepBothSides) {
  Env env = Start();
  Watchdog dog(env.store(4), Options(0));
  absl::Status st = dog.FailureReport(
      AllGather(1), absl::FailedPreconditionError("rank 0 called x but rank 1 called y"),
      absl::ZeroDuration());
  EXPECT_EQ(st.message(), "rank 0 of 'dp': rank 0 called x but rank 1 called y");
}

}  // namespace
}  // namespace loom::collectives
