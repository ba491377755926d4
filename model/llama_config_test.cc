#include "model/llama_config.h"

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace loom {
namespace {

using json = nlohmann::json;

// config.json as transformers 4.38 writes it for a small LlamaConfig.
constexpr char kHfConfig[] = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 32,
  "initializer_range": 0.02, "intermediate_size": 48, "max_position_embeddings": 2048,
  "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2,
  "num_key_value_heads": 2, "pretraining_tp": 1, "rms_norm_eps": 1e-06, "rope_scaling": null,
  "rope_theta": 10000.0, "tie_word_embeddings": false, "torch_dtype": "float32",
  "transformers_version": "4.38.2", "use_cache": true, "vocab_size": 64})";

TEST(LlamaConfigTest, ReadsTransformersConfig) {
  absl::StatusOr<LlamaConfig> c = LlamaConfigFromJson(json::parse(kHfConfig), "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vocab_size, 64);
  EXPECT_EQ(c->hidden_size, 32);
  EXPECT_EQ(c->intermediate_size, 48);
  EXPECT_EQ(c->num_hidden_layers, 2);
  EXPECT_EQ(c->kv_heads(), 2);
  EXPECT_EQ(c->head_size(), 8);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_FALSE(c->tie_word_embeddings);
  // embed + lm_head 2*64*32, per layer q,o 32*32 + k,v 32*16 + mlp 3*32*48 + 2 norms, final norm.
  EXPECT_EQ(c->NumParameters(), 2 * 64 * 32 + 2 * (2 * 1024 + 2 * 512 + 3 * 32 * 48 + 64) + 32);
}

TEST(LlamaConfigTest, RoundTripsThroughJson) {
  LlamaConfig c;
  c.vocab_size = 259;
  c.hidden_size = 128;
  c.intermediate_size = 344;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 1;
  c.rope_theta = 5e5;
  c.tie_word_embeddings = true;
  c.pad_token_id = 258;
  absl::StatusOr<LlamaConfig> back = LlamaConfigFromJson(LlamaConfigToJson(c), "x");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(LlamaConfigToJson(*back), LlamaConfigToJson(c));
  EXPECT_EQ(back->kv_heads(), 1);
  EXPECT_EQ(back->pad_token_id, 258);
}

TEST(LlamaConfigTest, SavesAndLoadsFile) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/config.json";
  LlamaConfig c;
  c.hidden_size = 64;
  c.num_attention_heads = 8;
  ASSERT_TRUE(SaveLlamaConfig(c, path).ok());
  absl::StatusOr<LlamaConfig> back = LoadLlamaConfig(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->hidden_size, 64);
  EXPECT_FALSE(std::ifstream(path + ".tmp").good());
}

void ExpectError(const std::string& text, bool strict, const std::string& needle) {
  absl::StatusOr<LlamaConfig> c = LlamaConfigFromJson(json::parse(text), "cfg.json", strict);
  ASSERT_FALSE(c.ok()) << text;
  EXPECT_NE(c.status().message().find(needle), std::string::npos)
      << c.status().message() << " lacks " << needle;
  EXPECT_NE(c.status().message().find("cfg.json"), std::string::npos) << c.status().message();
}

TEST(LlamaConfigTest, RejectsBadConfigsNamingTheKey) {
  ExpectError(R"({"hidden_size": "big"})", false, "'hidden_size' must be an integer, got \"big\"");
  ExpectError(R"({"rms_norm_eps": "x"})", false, "'rms_norm_eps' must be a number");
  ExpectError(R"({"tie_word_embeddings": 1})", false,
              "'tie_word_embeddings' must be true or false");
  ExpectError(R"({"hidden_size": 30, "num_attention_heads": 4})", false, "divisible");
  ExpectError(R"({"num_attention_heads": 6, "num_key_value_heads": 4, "hidden_size": 48})", false,
              "multiple of 'num_key_value_heads'");
  ExpectError(R"({"vocab_size": 0})", false, "'vocab_size' must be positive");
  ExpectError(R"({"model_type": "mistral"})", false, "only llama");
  ExpectError(R"({"rope_scaling": {"type": "linear", "factor": 2.0}})", false, "rope_scaling");
  ExpectError(R"({"attention_bias": true})", false, "attention_bias");
  ExpectError(R"({"hiden_size": 64})", true,
              "unknown key 'hiden_size', did you mean 'hidden_size'?");
  ExpectError(R"([1, 2])", false, "expected a JSON object");
}

TEST(LlamaConfigTest, UnknownKeysAreFineInConfigJson) {
  EXPECT_TRUE(LlamaConfigFromJson(json::parse(R"({"some_new_field": 3})"), "x").ok());
}

TEST(LlamaConfigTest, MissingFileNamesPath) {
  absl::StatusOr<LlamaConfig> c = LoadLlamaConfig("/nonexistent/config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/config.json"), std::string::npos);
}

}  // namespace
}  // namespace loom
