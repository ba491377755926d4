#include "collectives/launcher.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::collectives {
namespace {

using ::testing::HasSubstr;

std::string g_worker;  // path of collectives_worker (first argument)

struct Captured {
  LaunchResult result;
  std::string out, err;
  absl::Duration elapsed;
};

std::string ReadAll(FILE* f) {
  std::string s;
  std::rewind(f);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
  std::fclose(f);
  return s;
}

Captured RunWorker(int nproc, std::vector<std::string> args,
                   absl::Duration grace = absl::Seconds(5)) {
  LaunchOptions o;
  o.nproc_per_node = nproc;
  o.argv = {g_worker};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.env = {{"LOOM_COLLECTIVE_TIMEOUT", "10"}};
  o.grace = grace;
  o.out = std::tmpfile();
  o.err = std::tmpfile();
  const absl::Time start = absl::Now();
  absl::StatusOr<LaunchResult> r = Launch(o);
  Captured c;
  c.elapsed = absl::Now() - start;
  EXPECT_TRUE(r.ok()) << r.status();
  if (r.ok()) c.result = *r;
  c.out = ReadAll(o.out);
  c.err = ReadAll(o.err);
  return c;
}

class ProcessRanks : public ::testing::TestWithParam<int> {};

TEST_P(ProcessRanks, EveryCollectiveEveryDTypeAsProcesses) {
  const int n = GetParam();
  Captured c = RunWorker(n, {"--mode=cases"});
  EXPECT_EQ(c.result.exit_code, 0) << c.err;
  for (int r = 0; r < n; ++r) {
    EXPECT_THAT(c.out, HasSubstr(absl::StrCat("[rank ", r, "] rank ", r, " ok\n"))) << c.err;
  }
  EXPECT_THAT(c.err, HasSubstr(absl::StrCat("launcher: starting ", n, " local rank")));
}

INSTANTIATE_TEST_SUITE_P(Launcher, ProcessRanks, ::testing::Values(1, 2, 3, 4, 8));

TEST(LauncherTest, ARankKilledMidAllGatherFailsTheOthersWithinTheTimeout) {
  // Collective timeout 10 s; the survivors must name rank 1 and end well before that.
  Captured c = RunWorker(3, {"--mode=kill", "--victim=1"});
  std::printf("%s", c.err.c_str());  // the reports, for the test log
  EXPECT_EQ(c.result.failed_rank, 1);
  EXPECT_EQ(c.result.exit_code, 128 + 9);
  EXPECT_THAT(c.result.failure, HasSubstr("rank 1 failed: killed by signal 9"));
  EXPECT_LT(c.elapsed, absl::Seconds(10));
  for (int r : {0, 2}) {
    EXPECT_THAT(c.err, HasSubstr(absl::StrCat("collective failed on group 'world' (3 ranks) at "
                                              "rank ",
                                              r, ": all_gather f32 x 1048576 -> 3145728")))
        << c.err;
  }
  EXPECT_THAT(c.err, HasSubstr("rank 1: process died (its store connection closed)")) << c.err;
}

TEST(LauncherTest, AFailingRankStopsTheOthersAndIsNamed) {
  Captured c = RunWorker(3, {"--mode=fail", "--victim=2"}, absl::Seconds(2));
  EXPECT_EQ(c.result.failed_rank, 2);
  EXPECT_EQ(c.result.exit_code, 3);
  EXPECT_EQ(c.result.failure, "rank 2 failed: exit code 3: boom: intentional failure");
  EXPECT_THAT(c.err, HasSubstr("[rank 2] boom: intentional failure\n"));
  EXPECT_THAT(c.err, HasSubstr("launcher: rank 2 failed: exit code 3: boom"));
  EXPECT_LT(c.elapsed, absl::Seconds(8));
}

TEST(LauncherTest, MismatchedCollectivesAcrossProcessesFailOnEveryRank) {
  Captured c = RunWorker(3, {"--mode=mismatch", "--victim=1"});
  EXPECT_NE(c.result.exit_code, 0);
  for (int r : {0, 2}) {
    EXPECT_THAT(c.err, HasSubstr(absl::StrCat("[rank ", r, "] worker error: rank ", r,
                                              " of 'world': mismatched collectives on group "
                                              "'world': rank ",
                                              r,
                                              " called all_reduce(sum) f32 x 16 (seq 0) but rank 1 "
                                              "called all_gather f32 x 16 -> 48 (seq 0)")))
        << c.err;
  }
  EXPECT_THAT(c.err, HasSubstr("[rank 1] worker error: rank 1 of 'world': mismatched collectives "
                               "on group 'world': rank 1 called all_gather f32 x 16 -> 48 (seq 0) "
                               "but rank 0 called all_reduce(sum) f32 x 16 (seq 0)"))
      << c.err;
  EXPECT_LT(c.elapsed, absl::Seconds(8));
}

TEST(LauncherTest, AProgramThatCannotStart) {
  LaunchOptions o;
  o.nproc_per_node = 2;
  o.argv = {"/nonexistent/program"};
  o.err = std::tmpfile();
  absl::StatusOr<LaunchResult> r = Launch(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 127);
  EXPECT_THAT(r->failure, HasSubstr("cannot run /nonexistent/program: No such file"));
  std::fclose(o.err);
}

GetEnvFn FakeEnv(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

TEST(PlanLaunchTest, Decisions) {
  // Already a rank of a torchrun (or our) job.
  absl::StatusOr<LaunchPlan> p = PlanLaunch(4, {}, FakeEnv({{"RANK", "1"}, {"WORLD_SIZE", "4"}}));
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->launch);
  EXPECT_THAT(PlanLaunch(4, {}, FakeEnv({{"RANK", "1"}, {"WORLD_SIZE", "2"}})).status().message(),
              HasSubstr("the config's mesh needs 4 ranks but this process was started with "
                        "WORLD_SIZE=2"));
  // Nothing outside: launch locally.
  p = PlanLaunch(4, {}, FakeEnv({}));
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->launch);
  EXPECT_EQ(p->options.nproc_per_node, 4);
  EXPECT_FALSE(PlanLaunch(1, {}, FakeEnv({}))->launch);
  // Two nodes by flags.
  p = PlanLaunch(4, {.nnodes = 2, .node_rank = 1, .master_addr = "10.0.0.1", .master_port = 4000},
                 FakeEnv({}));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->options.nproc_per_node, 2);
  EXPECT_EQ(p->options.node_rank, 1);
  EXPECT_EQ(p->options.master_addr, "10.0.0.1");
  EXPECT_THAT(PlanLaunch(4, {.nnodes = 2, .node_rank = 0}, FakeEnv({})).status().message(),
              HasSubstr("needs --master-addr and --master-port"));
  EXPECT_THAT(PlanLaunch(3, {.nnodes = 2}, FakeEnv({})).status().message(),
              HasSubstr("needs 3 ranks, which --nnodes=2 does not divide"));
  // Slurm: a task per rank, or a task per node.
  EXPECT_FALSE(PlanLaunch(4, {}, FakeEnv({{"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "2"}}))->launch);
  p = PlanLaunch(8, {},
                 FakeEnv({{"SLURM_NTASKS", "2"},
                          {"SLURM_NNODES", "2"},
                          {"SLURM_NODEID", "1"},
                          {"SLURM_PROCID", "1"},
                          {"SLURM_JOB_NODELIST", "gpu[1-2]"},
                          {"SLURM_JOB_ID", "7"}}));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->launch);
  EXPECT_EQ(p->options.nproc_per_node, 4);
  EXPECT_EQ(p->options.node_rank, 1);
  EXPECT_EQ(p->options.master_addr, "gpu1");
  EXPECT_EQ(p->options.master_port, 29507);
}

TEST(NormalizeLauncherFlagsTest, TorchrunSpelling) {
  std::string a = "prog", b = "--node-rank=1", c = "--master-addr", d = "10.0.0.1",
              e = "--config=x-y.yaml";
  char* argv[] = {a.data(), b.data(), c.data(), d.data(), e.data()};
  NormalizeLauncherFlags(5, argv);
  EXPECT_STREQ(argv[1], "--node_rank=1");
  EXPECT_STREQ(argv[2], "--master_addr");
  EXPECT_STREQ(argv[4], "--config=x-y.yaml");
}

}  // namespace
}  // namespace loom::collectives

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 1) loom::collectives::g_worker = argv[1];
  return RUN_ALL_TESTS();
}
