#include "model/llama_config.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/spelling.h"
#include "runtime/status.h"

namespace loom {
namespace {

using json = nlohmann::json;

struct Reader {
  const json& j;
  const std::string& source;

  absl::Status Error(const std::string& key, const std::string& expected) const {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: '%s' must be %s, got %s", source, key, expected, j.at(key).dump()));
  }
  absl::Status Int(const char* key, int64_t* out) const {
    if (!j.contains(key)) return absl::OkStatus();
    const json& v = j.at(key);
    if (!v.is_number_integer()) return Error(key, "an integer");
    *out = v.get<int64_t>();
    return absl::OkStatus();
  }
  // Integer or null (null -> `if_null`).
  absl::Status OptionalInt(const char* key, int64_t if_null, int64_t* out) const {
    if (j.contains(key) && j.at(key).is_null()) {
      *out = if_null;
      return absl::OkStatus();
    }
    if (j.contains(key) && j.at(key).is_array()) {
      // transformers allows a list of eos ids; training uses the first.
      const json& v = j.at(key);
      if (v.empty() || !v[0].is_number_integer())
        return Error(key, "an integer or a list of integers");
      *out = v[0].get<int64_t>();
      return absl::OkStatus();
    }
    return Int(key, out);
  }
  absl::Status Double(const char* key, double* out) const {
    if (!j.contains(key)) return absl::OkStatus();
    const json& v = j.at(key);
    if (!v.is_number()) return Error(key, "a number");
    *out = v.get<double>();
    return absl::OkStatus();
  }
  absl::Status Bool(const char* key, bool* out) const {
    if (!j.contains(key)) return absl::OkStatus();
    const json& v = j.at(key);
    if (!v.is_boolean()) return Error(key, "true or false");
    *out = v.get<bool>();
    return absl::OkStatus();
  }
  absl::Status String(const char* key, std::string* out) const {
    if (!j.contains(key) || j.at(key).is_null()) return absl::OkStatus();
    const json& v = j.at(key);
    if (!v.is_string()) return Error(key, "a string");
    *out = v.get<std::string>();
    return absl::OkStatus();
  }
};

const std::vector<std::string>& KnownKeys() {
  static const auto* keys = new std::vector<std::string>{
      "vocab_size",          "hidden_size",         "intermediate_size", "num_hidden_layers",
      "num_attention_heads", "num_key_value_heads", "head_dim",          "max_position_embeddings",
      "rope_theta",          "rms_norm_eps",        "initializer_range", "tie_word_embeddings",
      "bos_token_id",        "eos_token_id",        "pad_token_id",      "torch_dtype"};
  return *keys;
}

}  // namespace

int64_t LlamaConfig::NumParameters() const {
  const int64_t d = hidden_size, e = head_size();
  const int64_t attn = d * (num_attention_heads * e) * 2 + d * (kv_heads() * e) * 2;
  const int64_t mlp = 3 * d * intermediate_size;
  const int64_t layer = attn + mlp + 2 * d;
  const int64_t embed = vocab_size * d;
  return embed * (tie_word_embeddings ? 1 : 2) + num_hidden_layers * layer + d;
}

absl::Status LlamaConfig::Validate() const {
  auto positive = [](const char* key, int64_t v) -> absl::Status {
    if (v > 0) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrFormat("'%s' must be positive, got %d", key, v));
  };
  LOOM_RETURN_IF_ERROR(positive("vocab_size", vocab_size));
  LOOM_RETURN_IF_ERROR(positive("hidden_size", hidden_size));
  LOOM_RETURN_IF_ERROR(positive("intermediate_size", intermediate_size));
  LOOM_RETURN_IF_ERROR(positive("num_hidden_layers", num_hidden_layers));
  LOOM_RETURN_IF_ERROR(positive("num_attention_heads", num_attention_heads));
  LOOM_RETURN_IF_ERROR(positive("max_position_embeddings", max_position_embeddings));
  if (num_key_value_heads < 0 || head_dim < 0) {
    return absl::InvalidArgumentError("'num_key_value_heads' and 'head_dim' must be >= 0");
  }
  if (head_dim == 0 && hidden_size % num_attention_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'hidden_size' (%d) must be divisible by 'num_attention_heads' (%d)",
                        hidden_size, num_attention_heads));
  }
  if (head_size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the head size (%d) must be even for rotary embeddings", head_size()));
  }
  if (num_attention_heads % kv_heads() != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "'num_attention_heads' (%d) must be a multiple of 'num_key_value_heads' (%d)",
        num_attention_heads, kv_heads()));
  }
  if (!(rope_theta > 0) || !(rms_norm_eps > 0) || !(initializer_range >= 0)) {
    return absl::InvalidArgumentError(
        "'rope_theta' and 'rms_norm_eps' must be positive and 'initializer_range' >= 0");
  }
  if (torch_dtype != "float32" && torch_dtype != "bfloat16" && torch_dtype != "float16") {
    return absl::InvalidArgumentError(absl::StrFormat(
        "'torch_dtype' must be float32, bfloat16 or float16, got '%s'", torch_dtype));
  }
  return absl::OkStatus();
}

absl::StatusOr<LlamaConfig> LlamaConfigFromJson(const json& j, const std::string& source,
                                                bool strict) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": expected a JSON object"));
  }
  if (j.contains("model_type") && j["model_type"] != "llama") {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": 'model_type' is ", j["model_type"].dump(), "; only llama is supported"));
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    return absl::UnimplementedError(absl::StrCat(
        source, ": 'rope_scaling' ", j["rope_scaling"].dump(), " is not supported yet"));
  }
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    if (j.contains(key) && j[key] == true) {
      return absl::UnimplementedError(
          absl::StrCat(source, ": '", key, "': true is not supported yet (Llama has no biases)"));
    }
  }
  if (j.contains("hidden_act") && j["hidden_act"] != "silu") {
    return absl::UnimplementedError(
        absl::StrCat(source, ": 'hidden_act' must be \"silu\", got ", j["hidden_act"].dump()));
  }
  if (strict) {
    for (const auto& [key, value] : j.items()) {
      const auto& known = KnownKeys();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": unknown key '", key, "'", DidYouMean(key, known)));
    }
  }
  LlamaConfig c;
  const Reader r{j, source};
  LOOM_RETURN_IF_ERROR(r.Int("vocab_size", &c.vocab_size));
  LOOM_RETURN_IF_ERROR(r.Int("hidden_size", &c.hidden_size));
  LOOM_RETURN_IF_ERROR(r.Int("intermediate_size", &c.intermediate_size));
  LOOM_RETURN_IF_ERROR(r.Int("num_hidden_layers", &c.num_hidden_layers));
  LOOM_RETURN_IF_ERROR(r.Int("num_attention_heads", &c.num_attention_heads));
  LOOM_RETURN_IF_ERROR(r.OptionalInt("num_key_value_heads", 0, &c.num_key_value_heads));
  LOOM_RETURN_IF_ERROR(r.OptionalInt("head_dim", 0, &c.head_dim));
  LOOM_RETURN_IF_ERROR(r.Int("max_position_embeddings", &c.max_position_embeddings));
  LOOM_RETURN_IF_ERROR(r.Double("rope_theta", &c.rope_theta));
  LOOM_RETURN_IF_ERROR(r.Double("rms_norm_eps", &c.rms_norm_eps));
  LOOM_RETURN_IF_ERROR(r.Double("initializer_range", &c.initializer_range));
  LOOM_RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &c.tie_word_embeddings));
  LOOM_RETURN_IF_ERROR(r.OptionalInt("bos_token_id", -1, &c.bos_token_id));
  LOOM_RETURN_IF_ERROR(r.OptionalInt("eos_token_id", -1, &c.eos_token_id));
  LOOM_RETURN_IF_ERROR(r.OptionalInt("pad_token_id", -1, &c.pad_token_id));
  LOOM_RETURN_IF_ERROR(r.String("torch_dtype", &c.torch_dtype));
  if (absl::Status s = c.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", s.message()));
  }
  return c;
}

absl::StatusOr<LlamaConfig> LoadLlamaConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open model config"));
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  }
  return LlamaConfigFromJson(j, path);
}

json LlamaConfigToJson(const LlamaConfig& c) {
  json j;
  j["architectures"] = json::array({"LlamaForCausalLM"});
  j["model_type"] = "llama";
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["hidden_act"] = "silu";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.kv_heads();
  if (c.head_dim > 0) j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rope_theta"] = c.rope_theta;
  j["rope_scaling"] = nullptr;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["initializer_range"] = c.initializer_range;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["bos_token_id"] = c.bos_token_id >= 0 ? json(c.bos_token_id) : json(nullptr);
  j["eos_token_id"] = c.eos_token_id >= 0 ? json(c.eos_token_id) : json(nullptr);
  if (c.pad_token_id >= 0) j["pad_token_id"] = c.pad_token_id;
  j["torch_dtype"] = c.torch_dtype;
  j["use_cache"] = true;
  return j;
}

absl::Status SaveLlamaConfig(const LlamaConfig& config, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << LlamaConfigToJson(config).dump(2) << "\n";
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::InternalError(absl::StrCat(tmp, ": cannot write model config"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": cannot rename ", tmp, " into place"));
  }
  return absl::OkStatus();
}

}  // namespace loom
