// tools/train with 2 data-parallel ranks (dp_replicate_size: 2, started by its own launcher)
// and gradient accumulation 2 against 1 rank with accumulation 4: the same global batches
// (micro_batch_size and gradient_accumulation_steps are per rank, as in Axolotl), so per-step
// losses and gradient norms, and the final weights, agree within 1e-5 (relative) / 2e-6 (absolute).
// And a rank that dies at step 2 ends the job non-zero naming rank 1, without hanging.
//
// Arguments: the train binary, the tiny example's train.jsonl.
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/pretrained.h"
#include "nlohmann/json.hpp"

namespace loom {
namespace {

using ::testing::HasSubstr;

std::string g_train, g_data;

struct RunResult {
  int exit_code = -1;
  std::string output;
  absl::Duration elapsed;
};

RunResult Train(const std::string& config, const std::string& env = "") {
  const std::string log = config + ".log";
  const std::string cmd =
      absl::StrCat(env, " ", g_train, " --config=", config, " > ", log, " 2>&1");
  const absl::Time start = absl::Now();
  const int status = std::system(cmd.c_str());
  RunResult r;
  r.elapsed = absl::Now() - start;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}

std::string WriteConfig(const std::string& name, const std::string& extra, int accumulation = 4) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/train.yaml";
  std::ofstream(path) << "model:\n"
                         "  vocab_size: 264\n"
                         "  hidden_size: 32\n"
                         "  intermediate_size: 64\n"
                         "  num_hidden_layers: 2\n"
                         "  num_attention_heads: 4\n"
                         "  num_key_value_heads: 2\n"
                         "  max_position_embeddings: 64\n"
                         "  bos_token_id: 256\n"
                         "  eos_token_id: 257\n"
                         "  pad_token_id: 258\n"
                         "datasets:\n"
                         "  - path: "
                      << g_data
                      << "\n"
                         "    type:\n"
                         "      format: \"{instruction}\\n\"\n"
                         "sequence_len: 48\n"
                         "micro_batch_size: 4\n"
                         "gradient_accumulation_steps: "
                      << accumulation
                      << "\n"
                         "max_steps: 4\n"
                         "learning_rate: 1.0e-2\n"
                         "warmup_steps: 1\n"
                         "weight_decay: 0.01\n"
                         "num_threads: 1\n"
                         "logging_steps: 1\n"
                         "output_dir: "
                      << dir << "/out\n"
                      << extra;
  return path;
}

std::vector<nlohmann::json> Metrics(const std::string& config) {
  std::ifstream in(std::filesystem::path(config).parent_path() / "out/metrics.jsonl");
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(DataParallelTrainTest, TwoRanksMatchOneRank) {
  const std::string one = WriteConfig("one", "");
  const std::string two = WriteConfig("two", "dp_replicate_size: 2\n", /*accumulation=*/2);
  const RunResult a = Train(one);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  const RunResult b = Train(two);
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_THAT(b.output, HasSubstr("launcher: starting 2 local ranks of 2"));
  EXPECT_THAT(b.output,
              HasSubstr("topology: 2 ranks, mesh dp_replicate 2 x dp_shard 1 x cp 1 x tp 1"));
  EXPECT_THAT(b.output, HasSubstr("[rank 0] trained 4 steps"));
  EXPECT_THAT(b.output, Not(HasSubstr("[rank 1] trained")));

  const std::vector<nlohmann::json> ma = Metrics(one), mb = Metrics(two);
  ASSERT_EQ(ma.size(), 4u);
  ASSERT_EQ(mb.size(), 4u);
  for (size_t i = 0; i < ma.size(); ++i) {
    EXPECT_EQ(ma[i]["trainable_tokens"], mb[i]["trainable_tokens"]);
    EXPECT_EQ(ma[i]["tokens"], mb[i]["tokens"]);
    const double la = ma[i]["loss"], lb = mb[i]["loss"];
    EXPECT_NEAR(la, lb, 1e-5 * std::abs(la)) << "step " << i + 1;
    const double ga = ma[i]["grad_norm"], gb = mb[i]["grad_norm"];
    EXPECT_NEAR(ga, gb, 1e-5 * std::abs(ga)) << "step " << i + 1;
  }
  // Only rank 0 writes: one model, in the second run's output_dir.
  absl::StatusOr<std::unique_ptr<LlamaForCausalLM>> wa =
      LoadPretrainedLlama(std::filesystem::path(one).parent_path() / "out");
  absl::StatusOr<std::unique_ptr<LlamaForCausalLM>> wb =
      LoadPretrainedLlama(std::filesystem::path(two).parent_path() / "out");
  ASSERT_TRUE(wa.ok() && wb.ok());
  const auto pa = (*wa)->NamedParameters(), pb = (*wb)->NamedParameters();
  ASSERT_EQ(pa.size(), pb.size());
  double worst = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    ASSERT_EQ(pa[i].first, pb[i].first);
    const std::vector<double> x = pa[i].second.ToDoubles(), y = pb[i].second.ToDoubles();
    for (size_t k = 0; k < x.size(); ++k) worst = std::max(worst, std::abs(x[k] - y[k]));
  }
  EXPECT_LT(worst, 2e-6);
  std::printf("max |w_1rank - w_2ranks| = %.3g\n", worst);
}

TEST(DataParallelTrainTest, ARankThatDiesEndsTheJobNamingIt) {
  const std::string two = WriteConfig("dies", "dp_replicate_size: 2\n");
  const RunResult r =
      Train(two, "LOOM_TEST_FAIL_RANK=1 LOOM_TEST_FAIL_STEP=2 LOOM_COLLECTIVE_TIMEOUT=20");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("[rank 1] train: rank 1: LOOM_TEST_FAIL_STEP=2 reached"));
  EXPECT_THAT(r.output, HasSubstr("launcher: rank 1 failed: killed by signal 6 (Aborted)"));
  EXPECT_LT(r.elapsed, absl::Seconds(20));  // the collective timeout: nobody waited for it
}

}  // namespace
}  // namespace loom

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc > 2) {
    loom::g_train = std::filesystem::absolute(argv[1]).string();
    loom::g_data = std::filesystem::absolute(argv[2]).string();
  }
  return RUN_ALL_TESTS();
}
