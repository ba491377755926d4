#include "train/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace loom {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::string(std::getenv("TEST_TMPDIR")) + "/cfg";
    fs::create_directories(dir_ + "/data");
    std::ofstream(dir_ + "/data/train.jsonl") << "{\"text\": \"a\"}\n";
    fs::create_directories(dir_ + "/hf");
    std::ofstream(dir_ + "/hf/config.json") << "{}";
    ASSERT_EQ(chdir(dir_.c_str()), 0);
  }

  absl::StatusOr<TrainConfig> Parse(const std::string& yaml) {
    return ParseTrainConfig(yaml, dir_ + "/train.yaml");
  }
  // The message holds "train.yaml:<line>:" and every needle.
  void ExpectError(const std::string& yaml, int line, const std::vector<std::string>& needles) {
    absl::StatusOr<TrainConfig> c = Parse(yaml);
    ASSERT_FALSE(c.ok()) << yaml;
    const std::string msg(c.status().message());
    const std::string where =
        line > 0 ? "train.yaml:" + std::to_string(line) + ":" : std::string("train.yaml:");
    EXPECT_NE(msg.find(where), std::string::npos) << msg << " lacks " << where;
    for (const std::string& n : needles) {
      EXPECT_NE(msg.find(n), std::string::npos) << msg << " lacks " << n;
    }
  }

  static constexpr char kBase[] =
      "base_model: hf\n"
      "datasets:\n"
      "  - path: data/train.jsonl\n"
      "learning_rate: 1.0e-3\n";
  std::string dir_;
};

TEST_F(ConfigTest, ParsesAFullConfig) {
  absl::StatusOr<TrainConfig> c = Parse(R"(
model:
  vocab_size: 264
  hidden_size: 64
  intermediate_size: 128
  num_hidden_layers: 2
  num_attention_heads: 4
  num_key_value_heads: 2
  rms_norm_eps: 1.0e-5
  tie_word_embeddings: true
datasets:
  - path: data/train.jsonl
    type: alpaca
  - path: data/train.jsonl
    type:
      format: "Q: {instruction}\nA: "
      field_output: answer
    ds_type: json
    split: train
val_set_size: 0.1
sequence_len: 128
train_on_inputs: true
micro_batch_size: 4
gradient_accumulation_steps: 2
num_epochs: 2.5
max_steps: 100
optimizer: adamw_torch_fused
learning_rate: 3.0e-4
weight_decay: 0.1
adam_beta1: 0.8
adam_beta2: 0.95
adam_epsilon: 1.0e-6
max_grad_norm: 0.5
lr_scheduler: linear
warmup_ratio: 0.1
cosine_min_lr_ratio: 0.1
seed: 7
output_dir: out/run1
logging_steps: 5
eval_steps: 50
save_steps: 25
num_threads: 2
gradient_checkpointing: true
)");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->model.has_value());
  EXPECT_EQ(c->model->hidden_size, 64);
  EXPECT_TRUE(c->model->tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c->model->rms_norm_eps, 1e-5);
  ASSERT_EQ(c->datasets.size(), 2u);
  EXPECT_EQ(c->datasets[0].type, "alpaca");
  EXPECT_EQ(c->datasets[0].path, dir_ + "/data/train.jsonl");
  EXPECT_EQ(c->datasets[1].type, "custom");
  EXPECT_EQ(c->datasets[1].format->format, "Q: {instruction}\nA: ");
  EXPECT_EQ(c->datasets[1].format->field_output, "answer");
  EXPECT_DOUBLE_EQ(c->val_set_size, 0.1);
  EXPECT_EQ(c->sequence_len, 128);
  EXPECT_TRUE(c->train_on_inputs);
  EXPECT_EQ(c->micro_batch_size, 4);
  EXPECT_EQ(c->gradient_accumulation_steps, 2);
  EXPECT_DOUBLE_EQ(c->num_epochs, 2.5);
  EXPECT_EQ(c->max_steps, 100);
  EXPECT_EQ(c->optimizer, "adamw_torch_fused");
  EXPECT_DOUBLE_EQ(c->learning_rate, 3e-4);
  EXPECT_DOUBLE_EQ(c->weight_decay, 0.1);
  EXPECT_DOUBLE_EQ(c->adam_beta1, 0.8);
  EXPECT_DOUBLE_EQ(c->adam_beta2, 0.95);
  EXPECT_DOUBLE_EQ(c->adam_epsilon, 1e-6);
  EXPECT_DOUBLE_EQ(c->max_grad_norm, 0.5);
  EXPECT_EQ(c->lr_scheduler, "linear");
  EXPECT_DOUBLE_EQ(c->warmup_ratio, 0.1);
  EXPECT_DOUBLE_EQ(c->cosine_min_lr_ratio, 0.1);
  EXPECT_EQ(c->seed, 7u);
  EXPECT_EQ(c->output_dir, "out/run1");
  EXPECT_EQ(c->logging_steps, 5);
  EXPECT_EQ(c->eval_steps, 50);
  EXPECT_EQ(c->save_steps, 25);
  EXPECT_EQ(c->num_threads, 2);
  EXPECT_TRUE(c->gradient_checkpointing);
}

TEST_F(ConfigTest, DefaultsFollowAxolotl) {
  absl::StatusOr<TrainConfig> c = Parse(kBase);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->base_model, dir_ + "/hf");
  EXPECT_EQ(c->sequence_len, 512);
  EXPECT_EQ(c->micro_batch_size, 1);
  EXPECT_EQ(c->seed, 42u);
  EXPECT_EQ(c->lr_scheduler, "cosine");
  EXPECT_EQ(c->datasets[0].type, "");
}

TEST_F(ConfigTest, UnknownKeySuggestsTheClosest) {
  ExpectError(std::string(kBase) + "learnin_rate: 1\n", 5,
              {"unknown key 'learnin_rate'", "did you mean 'learning_rate'?"});
  ExpectError(std::string(kBase) + "micro_batch: 1\n", 5, {"did you mean 'micro_batch_size'?"});
  ExpectError(
      "base_model: hf\ndatasets:\n  - path: data/train.jsonl\n    typ: alpaca\n"
      "learning_rate: 1\n",
      4, {"unknown key 'datasets[0].typ'", "did you mean 'type'?"});
  ExpectError(std::string(kBase) + "flash_attention_3_turbo: true\n", 5, {"unknown key"});
}

TEST_F(ConfigTest, WrongTypesNameTheKeyAndWhatWasExpected) {
  ExpectError(std::string(kBase) + "micro_batch_size: four\n", 5,
              {"'micro_batch_size' must be a positive integer, got \"four\""});
  ExpectError(std::string(kBase) + "micro_batch_size: 2.5\n", 5, {"'micro_batch_size' must be"});
  ExpectError(std::string(kBase) + "weight_decay: [1, 2]\n", 5,
              {"'weight_decay' must be a number, got a list"});
  ExpectError(std::string(kBase) + "train_on_inputs: maybe\n", 5,
              {"'train_on_inputs' must be true or false"});
  ExpectError("base_model: hf\ndatasets: data/train.jsonl\nlearning_rate: 1\n", 2,
              {"'datasets' must be a non-empty list"});
}

TEST_F(ConfigTest, OutOfRangeValuesNameTheRange) {
  ExpectError("base_model: hf\ndatasets:\n  - path: data/train.jsonl\nlearning_rate: 0\n", 4,
              {"'learning_rate' must be in (0, inf], got 0"});
  ExpectError(std::string(kBase) + "micro_batch_size: 0\n", 5, {"'micro_batch_size' must be"});
  ExpectError(std::string(kBase) + "sequence_len: 1\n", 5,
              {"'sequence_len' must be an integer >= 2"});
  ExpectError(std::string(kBase) + "adam_beta2: 1.0\n", 5, {"'adam_beta2' must be in [0, 1)"});
  ExpectError(std::string(kBase) + "lr_scheduler: cosin\n", 5, {"did you mean 'cosine'?"});
  ExpectError(std::string(kBase) + "optimizer: sgd\n", 5, {"'optimizer' must be adamw_torch"});
  ExpectError(std::string(kBase) + "warmup_steps: 5\nwarmup_ratio: 0.1\n", 6, {"not both"});
  ExpectError(std::string(kBase) + "val_set_size: 2.5\n", 5, {"whole number"});
}

TEST_F(ConfigTest, MissingFilesNameKeyAndPaths) {
  ExpectError("base_model: hf\ndatasets:\n  - path: data/nope.jsonl\nlearning_rate: 1\n", 3,
              {"'datasets[0].path': file 'data/nope.jsonl' not found", dir_ + "/data/nope.jsonl"});
  ExpectError("base_model: nowhere\ndatasets:\n  - path: data/train.jsonl\nlearning_rate: 1\n", 1,
              {"'base_model': folder 'nowhere' not found"});
  fs::create_directories(dir_ + "/empty_model");
  ExpectError("base_model: empty_model\ndatasets:\n  - path: data/train.jsonl\nlearning_rate: 1\n",
              1, {"has no config.json"});
  ExpectError("base_model: hf\nlearning_rate: 1\n", 0, {"'datasets' is required"});
  ExpectError("base_model: hf\ndatasets:\n  - path: data/train.jsonl\n", 0,
              {"'learning_rate' is required"});
}

TEST_F(ConfigTest, RelativePathsTryTheConfigFolderToo) {
  const std::string elsewhere = std::string(std::getenv("TEST_TMPDIR")) + "/elsewhere";
  fs::create_directories(elsewhere);
  ASSERT_EQ(chdir(elsewhere.c_str()), 0);
  absl::StatusOr<TrainConfig> c = Parse(kBase);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->datasets[0].path, dir_ + "/data/train.jsonl");
  EXPECT_EQ(c->base_model, dir_ + "/hf");
}

TEST_F(ConfigTest, ModelSectionErrors) {
  ExpectError("model:\n  hiden_size: 64\ndatasets:\n  - path: data/train.jsonl\nlearning_rate: 1\n",
              2, {"unknown key 'hiden_size', did you mean 'hidden_size'?"});
  ExpectError(
      "model:\n  hidden_size: 60\n  num_attention_heads: 8\ndatasets:\n  - path: "
      "data/train.jsonl\nlearning_rate: 1\n",
      2, {"divisible"});
  ExpectError(
      "model:\n  vocab_size: 300\nbase_model: hf\ndatasets:\n  - path: "
      "data/train.jsonl\nlearning_rate: 1\n",
      0, {"exactly one of 'base_model'", "both are set"});
  ExpectError("datasets:\n  - path: data/train.jsonl\nlearning_rate: 1\n", 0,
              {"exactly one of 'base_model'"});
}

TEST_F(ConfigTest, DatasetTypeAndFormatErrors) {
  ExpectError(
      "base_model: hf\ndatasets:\n  - path: data/train.jsonl\n    type: alpacca\n"
      "learning_rate: 1\n",
      4, {"did you mean 'alpaca'?"});
  ExpectError(
      "base_model: hf\ndatasets:\n  - path: data/train.jsonl\n    type:\n"
      "      field_output: out\nlearning_rate: 1\n",
      5, {"'datasets[0].type.format' is required"});
  ExpectError(
      "base_model: hf\ndatasets:\n  - path: data/train.jsonl\n    ds_type: parquet\n"
      "learning_rate: 1\n",
      4, {"only local jsonl"});
  ExpectError("base_model: hf\ndatasets:\n  - type: alpaca\nlearning_rate: 1\n", 3,
              {"'datasets[0].path' is required"});
}

TEST_F(ConfigTest, TestDatasetsAreAnEvalSetOfTheirOwn) {
  absl::StatusOr<TrainConfig> c = Parse(std::string(kBase) +
                                        "test_datasets:\n  - path: data/train.jsonl\n"
                                        "    type: completion\n");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->test_datasets.size(), 1u);
  EXPECT_EQ(c->test_datasets[0].type, "completion");
  ExpectError(
      std::string(kBase) + "val_set_size: 0.1\ntest_datasets:\n  - path: data/train.jsonl\n", 5,
      {"give 'val_set_size' or 'test_datasets', not both"});
  ExpectError(std::string(kBase) + "test_datasets:\n  - path: data/none.jsonl\n", 6,
              {"'test_datasets[0].path': file 'data/none.jsonl' not found"});
}

TEST_F(ConfigTest, SyntaxErrorsAndDuplicates) {
  ExpectError("base_model: hf\ndatasets: [\n", 0, {"YAML syntax error"});
  ExpectError(std::string(kBase) + "seed: 1\nseed: 2\n", 6,
              {"'seed' is given twice (first on line 5)"});
  ExpectError("- a\n- b\n", 0, {"expected a map of settings"});
}

TEST_F(ConfigTest, LoadsFromAFileAndReportsAMissingOne) {
  std::ofstream(dir_ + "/train.yaml") << kBase;
  absl::StatusOr<TrainConfig> c = LoadTrainConfig(dir_ + "/train.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->config_path, dir_ + "/train.yaml");
  absl::StatusOr<TrainConfig> missing = LoadTrainConfig(dir_ + "/nope.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.yaml"), std::string::npos);
}

TEST_F(ConfigTest, MeshKeys) {
  const std::string base = kBase;
  absl::StatusOr<TrainConfig> c = Parse(base);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->world_size(), 1);
  c = Parse(base + "dp_replicate_size: 2\ndp_shard_size: 3\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->dp_replicate_size, 2);
  EXPECT_EQ(c->dp_shard_size, 3);
  EXPECT_EQ(c->world_size(), 6);
  c = Parse(base + "tensor_parallel_size: 1\ncontext_parallel_size: 1\n");
  ASSERT_TRUE(c.ok()) << c.status();
  ExpectError(base + "dp_shard_size: 0\n", 5, {"'dp_shard_size' must be a positive integer"});
  ExpectError(base + "tensor_parallel_size: 2\n", 5,
              {"'tensor_parallel_size: 2': tensor parallelism is not implemented yet"});
  ExpectError(base + "context_parallel_size: 4\n", 5,
              {"'context_parallel_size: 4': context parallelism is not implemented yet"});
}

TEST_F(ConfigTest, DataPipelineKeys) {
  fs::create_directories(dir_ + "/data/folder");
  std::ofstream(dir_ + "/data/folder/a.jsonl") << "{\"text\": \"a\"}\n";
  fs::create_directories(dir_ + "/tok");
  std::ofstream(dir_ + "/tok/tokenizer.json") << "{}";
  absl::StatusOr<TrainConfig> c = Parse(R"(
base_model: hf
tokenizer_config: tok
datasets:
  - path: data/folder
    type: chat_template
    field_messages: conversations
    message_property_mappings:
      role: from
      content: value
    roles_to_train: [assistant, tool]
    train_on_eos: last
    chat_template: chatml
learning_rate: 1.0e-3
sample_packing: true
pad_to_multiple_of: 16
sample_packing_group_size: 5000
sample_packing_bin_size: 50
sample_packing_sequentially: true
sample_packing_eff_est: 0.95
multipack_real_batches: true
dataset_prepared_path: prepared
excess_length_strategy: truncate
min_sample_len: 4
chat_template: llama3
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->sample_packing);
  EXPECT_FALSE(c->pad_to_sequence_len.has_value());
  EXPECT_EQ(c->pad_to_multiple_of, 16);
  EXPECT_EQ(c->sample_packing_group_size, 5000);
  EXPECT_EQ(c->sample_packing_bin_size, 50);
  EXPECT_TRUE(c->sample_packing_sequentially);
  EXPECT_DOUBLE_EQ(c->sample_packing_eff_est, 0.95);
  EXPECT_TRUE(c->multipack_real_batches);
  EXPECT_EQ(c->dataset_prepared_path, "prepared");
  EXPECT_EQ(c->excess_length_strategy, "truncate");
  EXPECT_EQ(c->min_sample_len, 4);
  EXPECT_EQ(c->chat_template, "llama3");
  EXPECT_EQ(c->tokenizer_config, dir_ + "/tok");
  const data::DatasetSpec& d = c->datasets[0];
  EXPECT_EQ(d.path, dir_ + "/data/folder");
  EXPECT_EQ(d.type, "chat_template");
  EXPECT_EQ(d.field_messages, "conversations");
  EXPECT_EQ(d.message_property_mappings.at("role"), "from");
  EXPECT_EQ(d.message_property_mappings.at("content"), "value");
  EXPECT_EQ(d.roles_to_train, (std::vector<std::string>{"assistant", "tool"}));
  EXPECT_EQ(d.train_on_eos, "last");
  EXPECT_EQ(d.chat_template, "chatml");
  // Defaults (Axolotl's).
  absl::StatusOr<TrainConfig> def = Parse(kBase);
  ASSERT_TRUE(def.ok());
  EXPECT_FALSE(def->sample_packing);
  EXPECT_EQ(def->sample_packing_group_size, 100000);
  EXPECT_EQ(def->sample_packing_bin_size, 200);
  EXPECT_EQ(def->excess_length_strategy, "drop");
  EXPECT_EQ(def->min_sample_len, 2);
  EXPECT_EQ(def->chat_template, "tokenizer_default");
  EXPECT_EQ(def->datasets[0].roles_to_train, (std::vector<std::string>{"assistant"}));
  EXPECT_EQ(def->datasets[0].train_on_eos, "turn");
}

TEST_F(ConfigTest, DataPipelineKeyErrors) {
  const std::string base = std::string(kBase);
  ExpectError(base + "chat_template: vicuna\n", 5, {"'chat_template' must be tokenizer_default"});
  ExpectError(base + "excess_length_strategy: cut\n", 5,
              {"'excess_length_strategy' must be drop, truncate or raise"});
  ExpectError(base + "sample_packing_eff_est: 1.5\n", 5,
              {"'sample_packing_eff_est' must be in (0, 1]"});
  ExpectError(base + "sample_packing_bin_size: 0\n", 5, {"sample_packing_bin_size"});
  ExpectError(base + "sample_packng: true\n", 5, {"unknown key 'sample_packng'", "sample_packing"});
  ExpectError(base + "tokenizer_config: nowhere\n", 5, {"'tokenizer_config'", "not found"});
  ExpectError(
      "base_model: hf\ndatasets:\n  - path: data/train.jsonl\n    train_on_eos: often\n"
      "learning_rate: 1.0e-3\n",
      4, {"'datasets[0].train_on_eos' must be all, turn, last or none"});
  ExpectError(
      "base_model: hf\ndatasets:\n  - path: data/train.jsonl\n    roles_to_train: assistant\n"
      "learning_rate: 1.0e-3\n",
      4, {"'datasets[0].roles_to_train' must be a list of strings"});
  ExpectError(
      "base_model: hf\ndatasets:\n  - path: data/train.jsonl\n    message_property_mappings:\n"
      "      speaker: from\nlearning_rate: 1.0e-3\n",
      5, {"unknown key 'datasets[0].message_property_mappings.speaker'"});
}

}  // namespace
}  // namespace loom
