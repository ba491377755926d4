#include "train/trainer.h"

#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "model/pretrained.h"
#include "nlohmann/json.hpp"

namespace loom {
namespace {

std::string TmpDir() { return std::getenv("TEST_TMPDIR"); }

// Completion rows of a simple deterministic rule (each next letter follows
// from the previous one), so a tiny model can learn it quickly.
std::string WriteData(const std::string& name, int rows) {
  const std::string path = TmpDir() + "/" + name;
  std::ofstream out(path);
  for (int r = 0; r < rows; ++r) {
    std::string text;
    char c = char('a' + r % 7);
    for (int i = 0; i < 12 + r % 5; ++i) {
      text += c;
      c = char('a' + (c - 'a' + 3) % 26);
    }
    out << nlohmann::json({{"text", text}}).dump() << "\n";
  }
  return path;
}

TrainConfig TinyConfig(const std::string& data) {
  TrainConfig c;
  c.config_path = "test.yaml";
  LlamaConfig m;
  m.vocab_size = 264;
  m.hidden_size = 32;
  m.intermediate_size = 64;
  m.num_hidden_layers = 2;
  m.num_attention_heads = 4;
  m.num_key_value_heads = 2;
  m.max_position_embeddings = 64;
  c.model = m;
  c.datasets = {{.path = data, .type = "completion"}};
  c.sequence_len = 32;
  c.learning_rate = 1e-2;
  c.lr_scheduler = "constant";
  c.seed = 7;
  c.output_dir = TmpDir() + "/out";
  return c;
}

double MaxRelativeDifference(const Module& a, const Module& b) {
  double worst = 0;
  const NamedTensors pa = a.NamedParameters(), pb = b.NamedParameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    const std::vector<double> x = pa[i].second.ToDoubles(), y = pb[i].second.ToDoubles();
    double diff = 0, norm = 0;
    for (size_t j = 0; j < x.size(); ++j) {
      diff += (x[j] - y[j]) * (x[j] - y[j]);
      norm += y[j] * y[j];
    }
    worst = std::max(worst, std::sqrt(diff / norm));
  }
  return worst;
}

// 2 micro-batches of 4 rows make the same update as 1 batch of 8 rows: the
// loss is normalized by the trainable tokens of the whole step.
TEST(TrainerTest, GradientAccumulationMatchesOneBigBatch) {
  const std::string data = WriteData("accum.jsonl", 48);
  TrainConfig small = TinyConfig(data), big = TinyConfig(data);
  small.micro_batch_size = 4;
  small.gradient_accumulation_steps = 2;
  big.micro_batch_size = 8;
  big.gradient_accumulation_steps = 1;
  small.max_grad_norm = big.max_grad_norm = 0;  // compare the raw updates
  auto a = Trainer::Create(small), b = Trainer::Create(big);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(MaxRelativeDifference((*a)->model(), (*b)->model()), 0.0);
  for (int step = 0; step < 3; ++step) {
    const StepStats sa = (*a)->TrainOneStep(), sb = (*b)->TrainOneStep();
    EXPECT_EQ(sa.trainable_tokens, sb.trainable_tokens);
    EXPECT_NEAR(sa.loss, sb.loss, 1e-5 * sb.loss);
    EXPECT_NEAR(sa.grad_norm, sb.grad_norm, 1e-5 * sb.grad_norm);
  }
  // Rows hold 14-18 tokens, so the two micro-batches differ in trainable
  // tokens: a mean of per-micro-batch means misses this bound (by 5e-2). The
  // bound leaves room for summation-order rounding, which depends on the
  // padded length and on codegen (1.08e-5 seen under ASan at -O1).
  EXPECT_LT(MaxRelativeDifference((*a)->model(), (*b)->model()), 5e-5);
}

TEST(TrainerTest, StepsFollowEpochsAndMaxSteps) {
  const std::string data = WriteData("steps.jsonl", 50);
  TrainConfig c = TinyConfig(data);
  c.micro_batch_size = 4;
  c.gradient_accumulation_steps = 3;
  c.num_epochs = 2;
  auto t = Trainer::Create(c);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->steps_per_epoch(), 5);  // ceil(ceil(50 / 4) / 3)
  EXPECT_EQ((*t)->total_steps(), 10);
  c.max_steps = 7;
  EXPECT_EQ((*Trainer::Create(c))->total_steps(), 7);
  // Every row is seen once per epoch: the last step of an epoch is partial.
  int64_t rows = 0;
  for (int s = 0; s < 5; ++s) rows += (*t)->TrainOneStep().tokens > 0;
  EXPECT_EQ(rows, 5);
}

// A few dozen steps: the loss falls by a clear margin, the run writes
// metrics and a model that loads back with identical weights.
TEST(TrainerTest, TrainsSavesAndReloads) {
  const std::string data = WriteData("train.jsonl", 96);
  TrainConfig c = TinyConfig(data);
  c.micro_batch_size = 8;
  c.max_steps = 40;
  c.val_set_size = 16;
  c.lr_scheduler = "cosine";
  c.warmup_steps = 5;
  c.eval_steps = 20;
  c.save_steps = 20;
  auto t = Trainer::Create(c);
  ASSERT_TRUE(t.ok()) << t.status();
  FILE* log = std::tmpfile();
  absl::StatusOr<TrainSummary> s = (*t)->Run(log);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->steps, 40);
  EXPECT_LT(s->last_loss, 0.5 * s->first_loss) << s->first_loss << " -> " << s->last_loss;
  ASSERT_TRUE(s->initial_eval && s->final_eval);
  EXPECT_LT(s->final_eval->loss, 0.5 * s->initial_eval->loss);

  std::ifstream metrics(c.output_dir + "/metrics.jsonl");
  int train_lines = 0, eval_lines = 0;
  for (std::string line; std::getline(metrics, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("loss")) {
      ++train_lines;
      EXPECT_TRUE(j.contains("lr") && j.contains("grad_norm") && j.contains("tokens_per_s"));
    }
    if (j.contains("eval_loss")) ++eval_lines;
  }
  EXPECT_EQ(train_lines, 40);
  EXPECT_EQ(eval_lines, 3);  // start, step 20, end

  auto saved = LoadPretrainedLlama(c.output_dir);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(MaxRelativeDifference(**saved, (*t)->model()), 0.0);
  EXPECT_TRUE(LoadPretrainedLlama(c.output_dir + "/checkpoint-20").ok());
}

// base_model: training starts from the weights of a Hugging Face folder.
TEST(TrainerTest, StartsFromABaseModelFolder) {
  TrainConfig c = TinyConfig(WriteData("base.jsonl", 32));
  LlamaForCausalLM base(*c.model);
  base.InitWeights(123);
  const std::string dir = TmpDir() + "/base_model";
  ASSERT_TRUE(SavePretrainedLlama(base, dir).ok());
  c.model.reset();
  c.base_model = dir;
  auto t = Trainer::Create(c);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(MaxRelativeDifference((*t)->model(), base), 0.0);
  const double first = (*t)->TrainOneStep().loss;
  EXPECT_GT(first, 0.0);
  EXPECT_GT(MaxRelativeDifference((*t)->model(), base), 0.0);
  c.base_model = TmpDir() + "/no_such_model";
  auto missing = Trainer::Create(c);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no_such_model/config.json"), std::string::npos)
      << missing.status();
}

TEST(TrainerTest, RejectsAModelVocabularySmallerThanTheTokenizer) {
  TrainConfig c = TinyConfig(WriteData("vocab.jsonl", 8));
  c.model->vocab_size = 200;
  auto t = Trainer::Create(c);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("the model's vocab_size is 200"), std::string::npos)
      << t.status();
}

}  // namespace
}  // namespace loom
