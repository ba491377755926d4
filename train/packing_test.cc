// Packing changes the layout of a batch, never the math: the same samples
// packed into rows (with cu_seqlens) or padded one per row give the same loss
// and the same update, and a packed epoch trains every sample once.
#include <cmath>
#include <fstream>
#include <random>

#include "data/collators.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/ops/loss.h"
#include "train/trainer.h"

namespace loom {
namespace {

std::string TmpDir() { return std::getenv("TEST_TMPDIR"); }

std::string WriteData(const std::string& name, int rows) {
  const std::string path = TmpDir() + "/" + name;
  std::ofstream out(path);
  std::mt19937 rng(5);
  for (int r = 0; r < rows; ++r) {
    std::string text;
    for (int i = 0; i < 3 + int(rng() % 20); ++i) text += char('a' + rng() % 26);
    out << nlohmann::json({{"instruction", text.substr(0, 2)}, {"output", text}}).dump() << "\n";
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
  c.datasets = {
      {.path = data, .type = "custom", .format = data::PromptFormat{.format = "{instruction}="}}};
  c.sequence_len = 32;
  c.learning_rate = 1e-2;
  c.lr_scheduler = "constant";
  c.max_grad_norm = 0;
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
    worst = std::max(worst, std::sqrt(diff / std::max(norm, 1e-30)));
  }
  return worst;
}

TEST(PackingTest, PackedAndPaddedGiveTheSameLossAndUpdate) {
  const TrainConfig c = TinyConfig(WriteData("same.jsonl", 12));
  auto padded = Trainer::Create(c), packed = Trainer::Create(c);
  ASSERT_TRUE(padded.ok()) << padded.status();
  ASSERT_TRUE(packed.ok());
  const std::vector<data::Example>& ex = (*padded)->train_examples();
  ASSERT_GE(ex.size(), 8u);
  // Two micro-batches of the same 8 samples in both layouts.
  std::vector<const data::Example*> a = {&ex[0], &ex[1], &ex[2], &ex[3]},
                                    b = {&ex[4], &ex[5], &ex[6], &ex[7]};
  const int32_t pad = (*padded)->tokenizer().pad_id();
  const StepStats sp = (*padded)->Step({data::Collate(a, pad), data::Collate(b, pad)});
  const StepStats sk = (*packed)->Step(
      {data::CollatePacked({{a[0], a[1], a[2]}, {a[3]}}, {.pad_id = pad, .pad_to_multiple = 8}),
       data::CollatePacked({b}, {.pad_id = pad})});
  EXPECT_EQ(sp.trainable_tokens, sk.trainable_tokens);
  EXPECT_NEAR(sp.loss, sk.loss, 1e-6 * sp.loss);
  EXPECT_NEAR(sp.grad_norm, sk.grad_norm, 1e-5 * sp.grad_norm);
  EXPECT_LT(MaxRelativeDifference((*packed)->model(), (*padded)->model()), 1e-5);
}

// The control: the same packed row without sample boundaries (positions
// 0..T-1, no cu_seqlens) lets samples attend to each other, and the loss moves.
TEST(PackingTest, WithoutBoundariesTheLossDiffers) {
  const TrainConfig c = TinyConfig(WriteData("control.jsonl", 8));
  auto t = Trainer::Create(c);
  ASSERT_TRUE(t.ok());
  const std::vector<data::Example>& ex = (*t)->train_examples();
  const data::Batch row =
      data::CollatePacked({{&ex[0], &ex[1], &ex[2]}}, {.pad_id = (*t)->tokenizer().pad_id()});
  auto loss = [&](const LlamaInputs& in) {
    return CrossEntropy((*t)->model().Forward(row.input_ids, in), row.targets, Reduction::kSum)
        .item();
  };
  const double isolated = loss({.position_ids = row.position_ids, .cu_seqlens = row.cu_seqlens});
  const double by_positions = loss({.position_ids = row.position_ids});
  const int64_t t_len = row.input_ids.size(1);
  const double leaky = loss({.position_ids = DefaultPositionIds(1, t_len)});
  EXPECT_NEAR(isolated, by_positions, 1e-6 * isolated);  // position resets mark boundaries too
  EXPECT_GT(std::abs(isolated - leaky), 1e-3 * isolated);
}

TEST(PackingTest, APackedEpochTrainsEverySampleOnce) {
  TrainConfig c = TinyConfig(WriteData("epoch.jsonl", 60));
  c.sample_packing = true;
  c.micro_batch_size = 2;
  c.gradient_accumulation_steps = 2;
  c.num_epochs = 2;
  auto t = Trainer::Create(c);
  ASSERT_TRUE(t.ok()) << t.status();
  int64_t tokens = 0, trainable = 0;
  for (const data::Example& e : (*t)->train_examples()) {
    tokens += int64_t(e.input_ids.size());
    for (size_t i = 1; i < e.labels.size(); ++i) trainable += e.labels[i] != data::kIgnoreIndex;
  }
  // Fewer steps than padding one sample per row would need.
  EXPECT_LT((*t)->steps_per_epoch(), (60 + 3) / 4);
  int64_t seen_tokens = 0, seen_trainable = 0;
  for (int64_t s = 0; s < (*t)->steps_per_epoch(); ++s) {
    const StepStats st = (*t)->TrainOneStep();
    EXPECT_TRUE(std::isfinite(st.loss));
    seen_tokens += st.tokens;
    seen_trainable += st.trainable_tokens;
  }
  EXPECT_EQ(seen_tokens, tokens);
  EXPECT_EQ(seen_trainable, trainable);
  EXPECT_GE((*t)->total_steps(), 2 * ((*t)->steps_per_epoch() - 1));
}

TEST(PackingTest, RealBatchesAndTheEfficiencyEstimate) {
  TrainConfig c = TinyConfig(WriteData("real.jsonl", 40));
  c.sample_packing = true;
  c.multipack_real_batches = true;
  c.micro_batch_size = 3;
  auto t = Trainer::Create(c);
  ASSERT_TRUE(t.ok()) << t.status();
  const StepStats st = (*t)->TrainOneStep();
  EXPECT_GT(st.trainable_tokens, 0);
  c.sample_packing_eff_est = 0.5;
  c.multipack_real_batches = false;
  auto est = Trainer::Create(c);
  ASSERT_TRUE(est.ok());
  int64_t tokens = 0;
  for (const data::Example& e : (*est)->train_examples()) tokens += int64_t(e.input_ids.size());
  EXPECT_EQ((*est)->total_steps(),
            data::EstimatedTotalSteps(tokens, 0.5, c.sequence_len, 3, c.num_epochs));
}

}  // namespace
}  // namespace loom
