#include "collectives/rendezvous.h"

#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "collectives/socket.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::collectives {
namespace {

using ::testing::HasSubstr;

GetEnvFn FakeEnv(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

TEST(DistEnvTest, TorchrunVariables) {
  absl::StatusOr<DistEnv> e = DistEnvFromEnvironment(FakeEnv({{"RANK", "5"},
                                                              {"WORLD_SIZE", "8"},
                                                              {"LOCAL_RANK", "1"},
                                                              {"LOCAL_WORLD_SIZE", "4"},
                                                              {"MASTER_ADDR", "10.1.2.3"},
                                                              {"MASTER_PORT", "1234"}}));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->source, "torchrun");
  EXPECT_EQ(e->rank, 5);
  EXPECT_EQ(e->world_size, 8);
  EXPECT_EQ(e->local_rank, 1);
  EXPECT_EQ(e->local_world_size, 4);
  EXPECT_EQ(e->master_addr, "10.1.2.3");
  EXPECT_EQ(e->master_port, 1234);
  EXPECT_TRUE(StartedByLauncher(FakeEnv({{"RANK", "0"}, {"WORLD_SIZE", "2"}})));
}

TEST(DistEnvTest, SlurmVariables) {
  absl::StatusOr<DistEnv> e =
      DistEnvFromEnvironment(FakeEnv({{"SLURM_PROCID", "6"},
                                      {"SLURM_NTASKS", "8"},
                                      {"SLURM_LOCALID", "2"},
                                      {"SLURM_TASKS_PER_NODE", "4(x2)"},
                                      {"SLURM_JOB_NODELIST", "gpu[007-008],cpu1"},
                                      {"SLURM_JOB_ID", "123456"}}));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->source, "slurm");
  EXPECT_EQ(e->rank, 6);
  EXPECT_EQ(e->world_size, 8);
  EXPECT_EQ(e->local_rank, 2);
  EXPECT_EQ(e->local_world_size, 4);
  EXPECT_EQ(e->master_addr, "gpu007");
  EXPECT_EQ(e->master_port, 29500 + 456);
  EXPECT_FALSE(StartedByLauncher(FakeEnv({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}})));
  EXPECT_TRUE(StartedByLauncher(FakeEnv({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}})));
}

TEST(DistEnvTest, NoLauncherIsOneProcess) {
  absl::StatusOr<DistEnv> e = DistEnvFromEnvironment(FakeEnv({}));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->world_size, 1);
  EXPECT_EQ(e->source, "none");
  EXPECT_FALSE(StartedByLauncher(FakeEnv({})));
}

TEST(DistEnvTest, BadValuesNameTheVariable) {
  EXPECT_THAT(
      DistEnvFromEnvironment(FakeEnv({{"RANK", "x"}, {"WORLD_SIZE", "2"}})).status().message(),
      HasSubstr("RANK=\"x\" must be an integer >= 0"));
  EXPECT_THAT(
      DistEnvFromEnvironment(FakeEnv({{"RANK", "2"}, {"WORLD_SIZE", "2"}})).status().message(),
      HasSubstr("rank 2 is not below the world size 2"));
  EXPECT_THAT(DistEnvFromEnvironment(FakeEnv({{"RANK", "0"}})).status().message(),
              HasSubstr("RANK and WORLD_SIZE must be set together"));
  EXPECT_THAT(DistEnvFromEnvironment(
                  FakeEnv({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}))
                  .status()
                  .message(),
              HasSubstr("MASTER_PORT=70000 is not a TCP port"));
}

TEST(DistEnvTest, FirstSlurmHost) {
  EXPECT_EQ(FirstSlurmHost("node[01-04,07],gpu5"), "node01");
  EXPECT_EQ(FirstSlurmHost("a,b"), "a");
  EXPECT_EQ(FirstSlurmHost("n[3,5]"), "n3");
  EXPECT_EQ(FirstSlurmHost("single"), "single");
}

// Joins `n` thread ranks; world_sizes[r] is what rank r believes (default n).
std::vector<absl::Status> JoinThreads(int n, int port, std::vector<int> world_sizes,
                                      absl::Duration timeout,
                                      const std::function<void(World&)>& fn = nullptr) {
  std::vector<absl::Status> out(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      DistEnv env;
      env.rank = r;
      env.world_size = world_sizes.empty() ? n : world_sizes[size_t(r)];
      env.master_port = port;
      RendezvousOptions o;
      o.timeout = timeout;
      o.comm.timeout = timeout;
      o.comm.exit_on_hang = false;
      absl::StatusOr<std::unique_ptr<World>> w = World::Join(env, o);
      out[size_t(r)] = w.status();
      if (w.ok() && fn) fn(**w);
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

TEST(RendezvousTest, ThreeRanksJoinAndTalk) {
  const int port = *PickFreePort("127.0.0.1");
  std::vector<absl::Status> st = JoinThreads(3, port, {}, absl::Seconds(20), [](World& w) {
    EXPECT_EQ(w.ranks().size(), 3u);
    EXPECT_EQ(w.ranks()[2].rank, 2);
    EXPECT_EQ(w.ranks()[1].host, HostName());
    EXPECT_EQ(w.bind_address(), "127.0.0.1");
    Tensor t = Tensor::Full({4}, w.rank() + 1, DType::kF32);
    ASSERT_TRUE(w.comm().AllReduce(t, ReduceOp::kSum)->Wait().ok());
    EXPECT_EQ(t.ToDoubles()[3], 6.0);
    absl::StatusOr<std::string> id = ShareFromRoot(
        w.store(), "nccl_id", w.rank() == 0, [] { return std::string("unique-id"); },
        absl::Seconds(5));
    EXPECT_EQ(*id, "unique-id");
  });
  for (const absl::Status& s : st) EXPECT_TRUE(s.ok()) << s;
}

TEST(RendezvousTest, WrongWorldSizeIsNamed) {
  const int port = *PickFreePort("127.0.0.1");
  std::vector<absl::Status> st = JoinThreads(2, port, {2, 3}, absl::Seconds(1));
  EXPECT_THAT(st[1].message(),
              HasSubstr("rank 1 was started with WORLD_SIZE=3 but rank 0 with WORLD_SIZE=2"));
  EXPECT_EQ(st[0].code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(st[0].message(), HasSubstr("rank 1 of 2 did not arrive"));
}

TEST(RendezvousTest, ARankThatNeverArrivesIsNamed) {
  const int port = *PickFreePort("127.0.0.1");
  // Ranks 0 and 1 of a world of 4 (2 and 3 never start).
  std::vector<absl::Status> st = JoinThreads(2, port, {4, 4}, absl::Milliseconds(800));
  for (const absl::Status& s : st) {
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_THAT(s.message(), HasSubstr("rendezvous of 4 ranks: ranks 2, 3 of 4 did not arrive "
                                       "within 800ms"));
  }
}

TEST(RendezvousTest, PortInUseIsAClearError) {
  absl::StatusOr<Socket> taken = ListenTcp("127.0.0.1", 0);
  ASSERT_TRUE(taken.ok());
  DistEnv env;
  env.world_size = 2;
  env.master_port = taken->port;
  RendezvousOptions o;
  o.timeout = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<World>> w = World::Join(env, o);
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(),
              HasSubstr(absl::StrCat("cannot listen on 127.0.0.1:", taken->port,
                                     ": Address already in use")));
  EXPECT_THAT(w.status().message(), HasSubstr("MASTER_PORT"));
}

TEST(RendezvousTest, TwoProcessesWithTheSameRank) {
  const int port = *PickFreePort("127.0.0.1");
  std::vector<absl::Status> out(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      DistEnv env;
      env.rank = i == 0 ? 0 : 1;  // two claim rank 1
      env.world_size = 2;
      env.master_port = port;
      RendezvousOptions o;
      o.timeout = absl::Seconds(1);
      o.comm.timeout = absl::Seconds(1);
      o.comm.exit_on_hang = false;
      out[size_t(i)] = World::Join(env, o).status();
    });
  }
  for (auto& t : threads) t.join();
  int twice = 0;
  for (const absl::Status& s : out) {
    twice += absl::StrContains(s.message(),
                               "rank 1 joined twice (two processes were started "
                               "with RANK=1)");
  }
  EXPECT_EQ(twice, 1);
}

}  // namespace
}  // namespace loom::collectives
