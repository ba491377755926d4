// Llama hyperparameters, read from and written to Hugging Face `config.json`
// (LlamaConfig in transformers), with the same key names and defaults.
//
//   LOOM_ASSIGN_OR_RETURN(LlamaConfig c, LoadLlamaConfig("/models/llama/config.json"));
//   LOOM_RETURN_IF_ERROR(SaveLlamaConfig(c, "/out/config.json"));
#ifndef LOOM_MODEL_LLAMA_CONFIG_H_
#define LOOM_MODEL_LLAMA_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace loom {

struct LlamaConfig {
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 0;  // 0 -> num_attention_heads (as transformers)
  int64_t head_dim = 0;             // 0 -> hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  double initializer_range = 0.02;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  int64_t pad_token_id = -1;  // -1: none (null in JSON)
  std::string torch_dtype = "float32";

  int64_t kv_heads() const {
    return num_key_value_heads > 0 ? num_key_value_heads : num_attention_heads;
  }
  int64_t head_size() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }
  // Number of parameters (tied embeddings counted once).
  int64_t NumParameters() const;
  // Checks sizes are positive and consistent (heads divide, kv heads divide
  // heads); errors name the key.
  absl::Status Validate() const;
};

// Reads the keys above from a JSON object; other keys are ignored unless
// `strict` (then an unknown key is an error naming the closest valid key),
// which is how the trainer's `model:` section is read. `source` names the
// file (and section) in errors; a key of the wrong JSON type is an error
// naming the key and the expected type. A `model_type` other than "llama",
// or rope_scaling, attention_bias or mlp_bias that we do not implement, is
// an error, not a silent change of the math.
absl::StatusOr<LlamaConfig> LlamaConfigFromJson(const nlohmann::json& json,
                                                const std::string& source, bool strict = false);
absl::StatusOr<LlamaConfig> LoadLlamaConfig(const std::string& path);

// config.json as transformers writes it (architectures, model_type, ...).
nlohmann::json LlamaConfigToJson(const LlamaConfig& config);
// Written to `path`.tmp, then renamed.
absl::Status SaveLlamaConfig(const LlamaConfig& config, const std::string& path);

}  // namespace loom

#endif  // LOOM_MODEL_LLAMA_CONFIG_H_
