#include "collectives/store.h"

#include <thread>

#include "collectives/socket.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::collectives {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Fixture {
  std::unique_ptr<StoreServer> server;
  Store client(int rank = -1) {
    absl::StatusOr<Store> s = Store::Connect("127.0.0.1", server->port(), {.rank = rank});
    EXPECT_TRUE(s.ok()) << s.status();
    return *s;
  }
};

Fixture Start() {
  absl::StatusOr<std::unique_ptr<StoreServer>> server = StoreServer::Start({});
  EXPECT_TRUE(server.ok()) << server.status();
  return Fixture{std::move(*server)};
}

TEST(StoreTest, SetGetAddAcrossClients) {
  Fixture f = Start();
  Store a = f.client(), b = f.client();
  ASSERT_TRUE(a.Set("k", std::string("v\0w", 3)).ok());
  absl::StatusOr<std::string> v = b.Get("k", absl::Seconds(1));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, std::string("v\0w", 3));
  EXPECT_EQ(*a.Add("n", 2), 2);
  EXPECT_EQ(*b.Add("n", 5), 7);
  EXPECT_FALSE(b.TryGet("absent")->has_value());
}

TEST(StoreTest, PrefixesSeparateKeys) {
  Fixture f = Start();
  Store root = f.client();
  Store g1 = root.WithPrefix("g1/"), g2 = root.WithPrefix("g2/");
  ASSERT_TRUE(g1.Set("x", "1").ok());
  ASSERT_TRUE(g2.Set("x", "2").ok());
  EXPECT_EQ(*g1.Get("x", absl::Seconds(1)), "1");
  EXPECT_EQ(*root.Get("g2/x", absl::Seconds(1)), "2");
  EXPECT_THAT(*g1.Missing({"x", "y"}), ElementsAre("y"));
}

TEST(StoreTest, GetWaitsForALaterSet) {
  Fixture f = Start();
  Store a = f.client(), b = f.client();
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(a.Set("late", "here").ok());
  });
  absl::StatusOr<std::string> v = b.Get("late", absl::Seconds(5));
  writer.join();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "here");
}

TEST(StoreTest, WaitTimeoutNamesMissingKeys) {
  Fixture f = Start();
  Store a = f.client().WithPrefix("rdzv/");
  ASSERT_TRUE(a.Set("rank/0", "").ok());
  const absl::Time start = absl::Now();
  absl::Status st = a.Wait({"rank/0", "rank/1", "rank/2"}, absl::Milliseconds(200));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(st.message(), HasSubstr("2 of 3 keys: rdzv/rank/1, rdzv/rank/2"));
}

TEST(StoreTest, PortInUseIsAClearError) {
  Fixture f = Start();
  absl::StatusOr<std::unique_ptr<StoreServer>> second =
      StoreServer::Start({.host = "127.0.0.1", .port = f.server->port()});
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("Address already in use"));
  EXPECT_THAT(second.status().message(), HasSubstr(absl::StrCat(f.server->port())));
}

TEST(StoreTest, ConnectToNothingTimesOut) {
  absl::StatusOr<int> port = PickFreePort("127.0.0.1");
  ASSERT_TRUE(port.ok());
  absl::StatusOr<Store> s =
      Store::Connect("127.0.0.1", *port, {.connect_timeout = absl::Milliseconds(100)});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("cannot connect to 127.0.0.1"));
}

TEST(StoreTest, DisconnectWithoutGoodbyeMarksRankDead) {
  Fixture f = Start();
  Store observer = f.client();
  {
    Store r1 = f.client(1);
    Store r2 = f.client(2);
    ASSERT_TRUE(r2.Goodbye().ok());
  }  // both connections close; only rank 1 did not say goodbye
  std::vector<int> dead;
  for (int i = 0; i < 100 && dead.empty(); ++i) {
    dead = *observer.DeadRanks();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_THAT(dead, ElementsAre(1));
}

TEST(StoreTest, ServerGoneIsReported) {
  Fixture f = Start();
  Store a = f.client();
  f.server.reset();
  absl::Status st = a.Set("k", "v");
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(st.message(), HasSubstr("unreachable"));
}

TEST(StoreTest, AddOnANonInteger) {
  Fixture f = Start();
  Store a = f.client();
  ASSERT_TRUE(a.Set("s", "text").ok());
  absl::StatusOr<int64_t> v = a.Add("s", 1);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.status().message(), HasSubstr("does not hold an integer"));
}

}  // namespace
}  // namespace loom::collectives
