#include "train/config.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/spelling.h"
#include "runtime/status.h"
#include "train/lr_schedule.h"
#include "yaml-cpp/yaml.h"

namespace loom {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Reads typed values from YAML nodes; every error starts with "file:line:".
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  const std::string& source() const { return source_; }
  std::string At(const YAML::Node& n) const {
    return absl::StrCat(source_, ":", n.Mark().line + 1);
  }
  absl::Status Error(const YAML::Node& n, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(At(n), ": ", what));
  }
  absl::Status Expected(const YAML::Node& n, const std::string& key,
                        const std::string& expected) const {
    return Error(n, absl::StrCat("'", key, "' must be ", expected, ", got ", Show(n)));
  }
  static std::string Show(const YAML::Node& n) {
    if (n.IsScalar()) return absl::StrCat("\"", n.Scalar(), "\"");
    if (n.IsSequence()) return "a list";
    if (n.IsMap()) return "a map";
    return "nothing";
  }

  absl::StatusOr<int64_t> Int(const YAML::Node& n, const std::string& key, int64_t min,
                              const std::string& expected) const {
    int64_t v = 0;
    if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v)) {
      return Expected(n, key, expected);
    }
    if (v < min) return Expected(n, key, expected);
    return v;
  }
  absl::StatusOr<double> Double(const YAML::Node& n, const std::string& key) const {
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !std::isfinite(v)) {
      return Expected(n, key, "a number");
    }
    return v;
  }
  absl::StatusOr<bool> Bool(const YAML::Node& n, const std::string& key) const {
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
      return Expected(n, key, "true or false");
    }
    return v;
  }
  absl::StatusOr<std::string> String(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) return Expected(n, key, "a string");
    return n.Scalar();
  }
  // A number checked against [lo, hi] (either end open if the flag says so).
  absl::StatusOr<double> Range(const YAML::Node& n, const std::string& key, double lo, bool lo_open,
                               double hi, bool hi_open) const {
    LOOM_ASSIGN_OR_RETURN(double v, Double(n, key));
    const bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok) {
      std::string range =
          absl::StrCat(lo_open ? "(" : "[", lo, ", ", std::isinf(hi) ? "inf" : absl::StrCat(hi),
                       hi_open ? ")" : "]");
      return Error(n, absl::StrCat("'", key, "' must be in ", range, ", got ", n.Scalar()));
    }
    return v;
  }

  // Checks a map's keys: each known and none repeated.
  absl::Status Keys(const YAML::Node& map, const std::vector<std::string>& known,
                    const std::string& prefix) const {
    std::map<std::string, int> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      if (!it->first.IsScalar()) return Error(it->first, "keys must be plain names");
      const std::string key = it->first.Scalar();
      const int line = it->first.Mark().line + 1;
      if (auto [pos, fresh] = seen.emplace(key, line); !fresh) {
        return Error(it->first, absl::StrFormat("'%s%s' is given twice (first on line %d)", prefix,
                                                key, pos->second));
      }
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        return Error(it->first,
                     absl::StrCat("unknown key '", prefix, key, "'", DidYouMean(key, known)));
      }
    }
    return absl::OkStatus();
  }

 private:
  std::string source_;
};

// YAML to JSON for the `model:` section (config.json's types).
absl::StatusOr<json> ToJson(const Reader& r, const YAML::Node& n) {
  if (n.IsMap()) {
    json j = json::object();
    for (auto it = n.begin(); it != n.end(); ++it) {
      LOOM_ASSIGN_OR_RETURN(j[it->first.Scalar()], ToJson(r, it->second));
    }
    return j;
  }
  if (n.IsSequence()) {
    json j = json::array();
    for (const YAML::Node& e : n) {
      LOOM_ASSIGN_OR_RETURN(json v, ToJson(r, e));
      j.push_back(v);
    }
    return j;
  }
  if (n.IsNull()) return json(nullptr);
  const std::string& s = n.Scalar();
  // Quoted scalars stay strings; plain ones become what they look like.
  if (n.Tag() != "!") {
    int64_t i;
    double d;
    bool b;
    if (YAML::convert<int64_t>::decode(n, i)) return json(i);
    if (YAML::convert<double>::decode(n, d)) return json(d);
    if (s == "true" || s == "false" || s == "True" || s == "False") {
      YAML::convert<bool>::decode(n, b);
      return json(b);
    }
  }
  return json(s);
}

// A relative path: the working directory first (as Axolotl), then the
// config file's folder.
absl::StatusOr<std::string> ResolvePath(const Reader& r, const YAML::Node& n,
                                        const std::string& key, const std::string& config_dir,
                                        bool want_dir) {
  LOOM_ASSIGN_OR_RETURN(std::string path, r.String(n, key));
  std::vector<fs::path> tried = {fs::path(path)};
  if (fs::path(path).is_relative() && !config_dir.empty()) {
    tried.push_back(fs::path(config_dir) / path);
  }
  for (const fs::path& p : tried) {
    std::error_code ec;
    if (want_dir ? fs::is_directory(p, ec) : fs::is_regular_file(p, ec)) {
      return fs::absolute(p, ec).lexically_normal().string();
    }
  }
  std::vector<std::string> names;
  for (const fs::path& p : tried) names.push_back(fs::absolute(p).lexically_normal().string());
  return r.Error(n, absl::StrCat("'", key, "': ", want_dir ? "folder" : "file", " '", path,
                                 "' not found (tried ", absl::StrJoin(names, " and "), ")"));
}

// A string list (`roles_to_train: [assistant]`).
absl::StatusOr<std::vector<std::string>> StringList(const Reader& r, const YAML::Node& n,
                                                    const std::string& key) {
  if (!n.IsSequence()) return r.Expected(n, key, "a list of strings");
  std::vector<std::string> out;
  for (const YAML::Node& e : n) {
    LOOM_ASSIGN_OR_RETURN(std::string s, r.String(e, key));
    out.push_back(s);
  }
  return out;
}

const std::vector<std::string>& ChatTemplateNames() {
  static const auto* names = new std::vector<std::string>{"tokenizer_default", "llama3", "chatml"};
  return *names;
}

absl::Status CheckChatTemplate(const Reader& r, const YAML::Node& n, const std::string& key,
                               const std::string& name) {
  const auto& names = ChatTemplateNames();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    return r.Error(n, absl::StrCat("'", key,
                                   "' must be tokenizer_default, llama3 or chatml (the built-in "
                                   "templates; no Jinja engine), got \"",
                                   name, "\"", DidYouMean(name, names)));
  }
  return absl::OkStatus();
}

// The chat_template keys of one dataset entry.
absl::Status ParseChatKeys(const Reader& r, const YAML::Node& n, const std::string& prefix,
                           data::DatasetSpec* spec) {
  if (n["field_messages"]) {
    LOOM_ASSIGN_OR_RETURN(spec->field_messages,
                          r.String(n["field_messages"], prefix + "field_messages"));
  }
  if (const YAML::Node m = n["message_property_mappings"]; m) {
    const std::string key = prefix + "message_property_mappings";
    if (!m.IsMap()) return r.Expected(m, key, "a map such as {role: from, content: value}");
    LOOM_RETURN_IF_ERROR(r.Keys(m, {"role", "content"}, key + "."));
    for (auto it = m.begin(); it != m.end(); ++it) {
      LOOM_ASSIGN_OR_RETURN(spec->message_property_mappings[it->first.Scalar()],
                            r.String(it->second, key + "." + it->first.Scalar()));
    }
  }
  if (n["roles_to_train"]) {
    LOOM_ASSIGN_OR_RETURN(spec->roles_to_train,
                          StringList(r, n["roles_to_train"], prefix + "roles_to_train"));
  }
  for (const char* k : {"train_on_eos", "train_on_eot"}) {
    if (!n[k]) continue;
    LOOM_ASSIGN_OR_RETURN(std::string v, r.String(n[k], prefix + k));
    static const std::vector<std::string> kModes = {"all", "turn", "last", "none"};
    if (std::find(kModes.begin(), kModes.end(), v) == kModes.end()) {
      return r.Error(n[k], absl::StrCat("'", prefix, k, "' must be all, turn, last or none, got \"",
                                        v, "\"", DidYouMean(v, kModes)));
    }
    spec->train_on_eos = v;  // one end-of-turn token per built-in template: the same key
  }
  if (n["chat_template"]) {
    LOOM_ASSIGN_OR_RETURN(spec->chat_template,
                          r.String(n["chat_template"], prefix + "chat_template"));
    LOOM_RETURN_IF_ERROR(
        CheckChatTemplate(r, n["chat_template"], prefix + "chat_template", spec->chat_template));
  }
  return absl::OkStatus();
}

absl::StatusOr<data::DatasetSpec> ParseDataset(const Reader& r, const YAML::Node& n,
                                               const std::string& list, size_t index,
                                               const std::string& config_dir) {
  const std::string prefix = absl::StrCat(list, "[", index, "].");
  if (!n.IsMap())
    return r.Error(
        n, absl::StrCat("'", prefix.substr(0, prefix.size() - 1), "' must be a map with a 'path'"));
  LOOM_RETURN_IF_ERROR(r.Keys(
      n,
      {"path", "type", "field", "ds_type", "split", "field_messages", "message_property_mappings",
       "roles_to_train", "train_on_eos", "train_on_eot", "chat_template"},
      prefix));
  if (!n["path"]) return r.Error(n, absl::StrCat("'", prefix, "path' is required"));
  data::DatasetSpec spec;
  {
    // A file or a folder of .json / .jsonl files.
    absl::StatusOr<std::string> file =
        ResolvePath(r, n["path"], prefix + "path", config_dir, /*want_dir=*/false);
    absl::StatusOr<std::string> folder =
        ResolvePath(r, n["path"], prefix + "path", config_dir, /*want_dir=*/true);
    if (!file.ok() && !folder.ok()) return file.status();
    spec.path = file.ok() ? *file : *folder;
  }
  LOOM_RETURN_IF_ERROR(ParseChatKeys(r, n, prefix, &spec));
  if (const YAML::Node t = n["type"]; t && !t.IsNull()) {
    if (t.IsMap()) {
      static const std::vector<std::string> kFormatKeys = {
          "field_instruction", "field_input",   "field_output", "format",
          "no_input_format",   "system_prompt", "system_format"};
      LOOM_RETURN_IF_ERROR(r.Keys(t, kFormatKeys, prefix + "type."));
      data::PromptFormat f;
      std::map<std::string, std::string*> fields = {
          {"field_instruction", &f.field_instruction}, {"field_input", &f.field_input},
          {"field_output", &f.field_output},           {"format", &f.format},
          {"no_input_format", &f.no_input_format},     {"system_prompt", &f.system_prompt},
          {"system_format", &f.system_format}};
      for (auto& [key, out] : fields) {
        if (t[key]) {
          LOOM_ASSIGN_OR_RETURN(*out, r.String(t[key], prefix + "type." + key));
        }
      }
      if (f.format.empty()) {
        return r.Error(t, absl::StrCat("'", prefix,
                                       "type.format' is required for a custom "
                                       "prompt format, e.g. \"{instruction}\\n\""));
      }
      spec.type = "custom";
      spec.format = f;
    } else {
      LOOM_ASSIGN_OR_RETURN(spec.type, r.String(t, prefix + "type"));
      static const std::vector<std::string> kTypes = {"completion", "pretokenized", "alpaca",
                                                      "chat_template"};
      if (std::find(kTypes.begin(), kTypes.end(), spec.type) == kTypes.end()) {
        return r.Error(t, absl::StrCat("'", prefix,
                                       "type' must be completion, pretokenized, "
                                       "alpaca, chat_template or a custom format map, got \"",
                                       spec.type, "\"", DidYouMean(spec.type, kTypes)));
      }
    }
  }
  if (n["field"]) {
    LOOM_ASSIGN_OR_RETURN(spec.field, r.String(n["field"], prefix + "field"));
  }
  if (n["ds_type"]) {
    LOOM_ASSIGN_OR_RETURN(std::string ds_type, r.String(n["ds_type"], prefix + "ds_type"));
    if (ds_type != "json" && ds_type != "jsonl") {
      return r.Error(n["ds_type"], absl::StrCat("'", prefix,
                                                "ds_type' must be json: only local "
                                                "jsonl files are supported, got \"",
                                                ds_type, "\""));
    }
  }
  if (n["split"]) {
    LOOM_ASSIGN_OR_RETURN(std::string split, r.String(n["split"], prefix + "split"));
    if (split != "train") {
      return r.Error(n["split"], absl::StrCat("'", prefix,
                                              "split' must be train (a local jsonl "
                                              "file has one split), got \"",
                                              split, "\""));
    }
  }
  return spec;
}

using Handler =
    std::function<absl::Status(const Reader&, const YAML::Node&, const std::string&, TrainConfig&)>;

// Handlers for the simple keys, by name.
const std::map<std::string, Handler>& ScalarHandlers() {
  static const auto* handlers = [] {
    auto* h = new std::map<std::string, Handler>;
    auto positive_int = [](int64_t TrainConfig::*field, int64_t min) {
      return [field, min](const Reader& r, const YAML::Node& n, const std::string& key,
                          TrainConfig& c) -> absl::Status {
        const std::string what =
            min > 0 ? (min == 1 ? "a positive integer" : absl::StrCat("an integer >= ", min))
                    : "an integer >= 0";
        LOOM_ASSIGN_OR_RETURN(c.*field, r.Int(n, key, min, what));
        return absl::OkStatus();
      };
    };
    auto number = [](double TrainConfig::*field, double lo, bool lo_open, double hi, bool hi_open) {
      return [=](const Reader& r, const YAML::Node& n, const std::string& key,
                 TrainConfig& c) -> absl::Status {
        LOOM_ASSIGN_OR_RETURN(c.*field, r.Range(n, key, lo, lo_open, hi, hi_open));
        return absl::OkStatus();
      };
    };
    const double inf = std::numeric_limits<double>::infinity();
    (*h)["sequence_len"] = positive_int(&TrainConfig::sequence_len, 2);
    (*h)["micro_batch_size"] = positive_int(&TrainConfig::micro_batch_size, 1);
    (*h)["gradient_accumulation_steps"] =
        positive_int(&TrainConfig::gradient_accumulation_steps, 1);
    (*h)["max_steps"] = positive_int(&TrainConfig::max_steps, 0);
    (*h)["warmup_steps"] = positive_int(&TrainConfig::warmup_steps, 0);
    (*h)["logging_steps"] = positive_int(&TrainConfig::logging_steps, 1);
    (*h)["eval_steps"] = positive_int(&TrainConfig::eval_steps, 0);
    (*h)["save_steps"] = positive_int(&TrainConfig::save_steps, 0);
    (*h)["num_threads"] = positive_int(&TrainConfig::num_threads, 0);
    (*h)["dp_replicate_size"] = positive_int(&TrainConfig::dp_replicate_size, 1);
    (*h)["dp_shard_size"] = positive_int(&TrainConfig::dp_shard_size, 1);
    auto not_yet = [positive_int](int64_t TrainConfig::*field, const char* strategy) {
      return [=](const Reader& r, const YAML::Node& n, const std::string& key,
                 TrainConfig& c) -> absl::Status {
        LOOM_RETURN_IF_ERROR(positive_int(field, 1)(r, n, key, c));
        if (c.*field > 1) {
          return r.Error(n, absl::StrCat("'", key, ": ", c.*field, "': ", strategy,
                                         " is not implemented yet; use dp_replicate_size or "
                                         "dp_shard_size (data parallelism), or 1"));
        }
        return absl::OkStatus();
      };
    };
    (*h)["context_parallel_size"] =
        not_yet(&TrainConfig::context_parallel_size, "context parallelism");
    (*h)["tensor_parallel_size"] =
        not_yet(&TrainConfig::tensor_parallel_size, "tensor parallelism");
    (*h)["num_epochs"] = number(&TrainConfig::num_epochs, 0, true, inf, false);
    (*h)["learning_rate"] = number(&TrainConfig::learning_rate, 0, true, inf, false);
    (*h)["weight_decay"] = number(&TrainConfig::weight_decay, 0, false, inf, false);
    (*h)["adam_beta1"] = number(&TrainConfig::adam_beta1, 0, false, 1, true);
    (*h)["adam_beta2"] = number(&TrainConfig::adam_beta2, 0, false, 1, true);
    (*h)["adam_epsilon"] = number(&TrainConfig::adam_epsilon, 0, true, inf, false);
    (*h)["max_grad_norm"] = number(&TrainConfig::max_grad_norm, 0, false, inf, false);
    (*h)["warmup_ratio"] = number(&TrainConfig::warmup_ratio, 0, false, 1, true);
    (*h)["cosine_min_lr_ratio"] = number(&TrainConfig::cosine_min_lr_ratio, 0, false, 1, false);
    (*h)["val_set_size"] = number(&TrainConfig::val_set_size, 0, false, inf, false);
    (*h)["train_on_inputs"] = [](const Reader& r, const YAML::Node& n, const std::string& key,
                                 TrainConfig& c) {
      LOOM_ASSIGN_OR_RETURN(c.train_on_inputs, r.Bool(n, key));
      return absl::OkStatus();
    };
    auto flag = [](bool TrainConfig::*field) {
      return [field](const Reader& r, const YAML::Node& n, const std::string& key,
                     TrainConfig& c) -> absl::Status {
        LOOM_ASSIGN_OR_RETURN(c.*field, r.Bool(n, key));
        return absl::OkStatus();
      };
    };
    auto text = [](std::string TrainConfig::*field) {
      return [field](const Reader& r, const YAML::Node& n, const std::string& key,
                     TrainConfig& c) -> absl::Status {
        LOOM_ASSIGN_OR_RETURN(c.*field, r.String(n, key));
        return absl::OkStatus();
      };
    };
    (*h)["sample_packing"] = flag(&TrainConfig::sample_packing);
    (*h)["sample_packing_sequentially"] = flag(&TrainConfig::sample_packing_sequentially);
    (*h)["multipack_real_batches"] = flag(&TrainConfig::multipack_real_batches);
    (*h)["pad_to_sequence_len"] = [](const Reader& r, const YAML::Node& n, const std::string& key,
                                     TrainConfig& c) -> absl::Status {
      LOOM_ASSIGN_OR_RETURN(c.pad_to_sequence_len, r.Bool(n, key));
      return absl::OkStatus();
    };
    (*h)["pad_to_multiple_of"] = positive_int(&TrainConfig::pad_to_multiple_of, 1);
    (*h)["sample_packing_group_size"] = positive_int(&TrainConfig::sample_packing_group_size, 1);
    (*h)["sample_packing_bin_size"] = positive_int(&TrainConfig::sample_packing_bin_size, 1);
    (*h)["sample_packing_eff_est"] =
        number(&TrainConfig::sample_packing_eff_est, 0, true, 1, false);
    (*h)["min_sample_len"] = positive_int(&TrainConfig::min_sample_len, 1);
    (*h)["dataset_prepared_path"] = text(&TrainConfig::dataset_prepared_path);
    (*h)["excess_length_strategy"] = [](const Reader& r, const YAML::Node& n,
                                        const std::string& key, TrainConfig& c) -> absl::Status {
      LOOM_ASSIGN_OR_RETURN(c.excess_length_strategy, r.String(n, key));
      static const std::vector<std::string> kStrategies = {"drop", "truncate", "raise"};
      if (std::find(kStrategies.begin(), kStrategies.end(), c.excess_length_strategy) ==
          kStrategies.end()) {
        return r.Error(n, absl::StrCat("'excess_length_strategy' must be drop, truncate or raise, "
                                       "got \"",
                                       c.excess_length_strategy, "\"",
                                       DidYouMean(c.excess_length_strategy, kStrategies)));
      }
      return absl::OkStatus();
    };
    (*h)["chat_template"] = [](const Reader& r, const YAML::Node& n, const std::string& key,
                               TrainConfig& c) -> absl::Status {
      LOOM_ASSIGN_OR_RETURN(c.chat_template, r.String(n, key));
      return CheckChatTemplate(r, n, key, c.chat_template);
    };
    (*h)["gradient_checkpointing"] = [](const Reader& r, const YAML::Node& n,
                                        const std::string& key, TrainConfig& c) {
      LOOM_ASSIGN_OR_RETURN(c.gradient_checkpointing, r.Bool(n, key));
      return absl::OkStatus();
    };
    (*h)["seed"] = [](const Reader& r, const YAML::Node& n, const std::string& key,
                      TrainConfig& c) -> absl::Status {
      LOOM_ASSIGN_OR_RETURN(int64_t seed, r.Int(n, key, 0, "an integer >= 0"));
      c.seed = uint64_t(seed);
      return absl::OkStatus();
    };
    (*h)["output_dir"] = [](const Reader& r, const YAML::Node& n, const std::string& key,
                            TrainConfig& c) {
      LOOM_ASSIGN_OR_RETURN(c.output_dir, r.String(n, key));
      return absl::OkStatus();
    };
    (*h)["lr_scheduler"] = [](const Reader& r, const YAML::Node& n, const std::string& key,
                              TrainConfig& c) -> absl::Status {
      LOOM_ASSIGN_OR_RETURN(c.lr_scheduler, r.String(n, key));
      if (absl::StatusOr<LrSchedule::Kind> k = ParseLrSchedulerName(c.lr_scheduler); !k.ok()) {
        return r.Error(n, std::string(k.status().message()));
      }
      return absl::OkStatus();
    };
    (*h)["optimizer"] = [](const Reader& r, const YAML::Node& n, const std::string& key,
                           TrainConfig& c) -> absl::Status {
      LOOM_ASSIGN_OR_RETURN(c.optimizer, r.String(n, key));
      static const std::vector<std::string> kOptimizers = {"adamw_torch", "adamw_torch_fused",
                                                           "adamw"};
      if (std::find(kOptimizers.begin(), kOptimizers.end(), c.optimizer) == kOptimizers.end()) {
        return r.Error(n, absl::StrCat("'optimizer' must be adamw_torch, adamw_torch_fused or "
                                       "adamw (all the same fused AdamW here), got \"",
                                       c.optimizer, "\"", DidYouMean(c.optimizer, kOptimizers)));
      }
      return absl::OkStatus();
    };
    return h;
  }();
  return *handlers;
}

}  // namespace

const std::vector<std::string>& TrainConfigKeys() {
  static const auto* keys = [] {
    auto* k = new std::vector<std::string>{"base_model", "model", "datasets", "test_datasets",
                                           "tokenizer_config"};
    for (const auto& [name, h] : ScalarHandlers()) k->push_back(name);
    return k;
  }();
  return *keys;
}

absl::StatusOr<TrainConfig> ParseTrainConfig(const std::string& yaml_text,
                                             const std::string& source) {
  const Reader r(source);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s:%d: YAML syntax error: %s", source, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": expected a map of settings (key: value lines)"));
  }
  LOOM_RETURN_IF_ERROR(r.Keys(root, TrainConfigKeys(), ""));
  TrainConfig c;
  c.config_path = source;
  const std::string config_dir = fs::path(source).parent_path().string();

  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string key = it->first.Scalar();
    const YAML::Node value = it->second;  // a copy: the iterator hands out a temporary
    if (auto h = ScalarHandlers().find(key); h != ScalarHandlers().end()) {
      if (value.IsNull()) continue;  // "key:" with no value keeps the default
      LOOM_RETURN_IF_ERROR(h->second(r, value, key, c));
    }
  }
  if (const YAML::Node base = root["base_model"]; base && !base.IsNull()) {
    LOOM_ASSIGN_OR_RETURN(c.base_model,
                          ResolvePath(r, base, "base_model", config_dir, /*want_dir=*/true));
    if (!fs::exists(c.base_model + "/config.json")) {
      return r.Error(base, absl::StrCat("'base_model': ", c.base_model,
                                        " has no config.json (expected a Hugging Face folder)"));
    }
  }
  if (const YAML::Node tok = root["tokenizer_config"]; tok && !tok.IsNull()) {
    absl::StatusOr<std::string> dir =
        ResolvePath(r, tok, "tokenizer_config", config_dir, /*want_dir=*/true);
    absl::StatusOr<std::string> file =
        ResolvePath(r, tok, "tokenizer_config", config_dir, /*want_dir=*/false);
    if (!dir.ok() && !file.ok()) return dir.status();
    c.tokenizer_config = dir.ok() ? *dir : *file;
    if (dir.ok() && !fs::exists(c.tokenizer_config + "/tokenizer.json")) {
      return r.Error(tok, absl::StrCat("'tokenizer_config': ", c.tokenizer_config,
                                       " has no tokenizer.json (a Hugging Face tokenizer)"));
    }
  }
  if (const YAML::Node model = root["model"]; model && !model.IsNull()) {
    if (!model.IsMap()) return r.Expected(model, "model", "a map of config.json keys");
    LOOM_ASSIGN_OR_RETURN(json j, ToJson(r, model));
    LOOM_ASSIGN_OR_RETURN(c.model,
                          LlamaConfigFromJson(j, absl::StrCat(r.At(model), ": model"), true));
  }
  if (c.base_model.empty() == !c.model.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     ": give exactly one of 'base_model' (a Hugging Face folder) and 'model' "
                     "(a config to train from scratch)",
                     c.base_model.empty() ? "" : "; both are set"));
  }

  const YAML::Node datasets = root["datasets"];
  if (!datasets || datasets.IsNull()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": 'datasets' is required"));
  }
  if (!datasets.IsSequence() || datasets.size() == 0) {
    return r.Expected(datasets, "datasets", "a non-empty list of {path, type}");
  }
  for (size_t i = 0; i < datasets.size(); ++i) {
    LOOM_ASSIGN_OR_RETURN(data::DatasetSpec spec,
                          ParseDataset(r, datasets[i], "datasets", i, config_dir));
    c.datasets.push_back(std::move(spec));
  }
  if (const YAML::Node test = root["test_datasets"]; test && !test.IsNull()) {
    if (!test.IsSequence() || test.size() == 0) {
      return r.Expected(test, "test_datasets", "a non-empty list of {path, type}");
    }
    for (size_t i = 0; i < test.size(); ++i) {
      LOOM_ASSIGN_OR_RETURN(data::DatasetSpec spec,
                            ParseDataset(r, test[i], "test_datasets", i, config_dir));
      c.test_datasets.push_back(std::move(spec));
    }
  }

  if (!root["learning_rate"] || root["learning_rate"].IsNull()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": 'learning_rate' is required"));
  }
  if (root["warmup_steps"] && root["warmup_ratio"] && c.warmup_ratio > 0 && c.warmup_steps > 0) {
    return r.Error(root["warmup_ratio"], "give 'warmup_steps' or 'warmup_ratio', not both");
  }
  if (!c.test_datasets.empty() && c.val_set_size > 0) {
    return r.Error(root["val_set_size"], "give 'val_set_size' or 'test_datasets', not both");
  }
  if (c.val_set_size >= 1 && c.val_set_size != std::floor(c.val_set_size)) {
    return r.Error(root["val_set_size"], absl::StrCat("'val_set_size' must be a fraction in "
                                                      "[0, 1) or a whole number of rows, got ",
                                                      root["val_set_size"].Scalar()));
  }
  return c;
}

absl::StatusOr<TrainConfig> LoadTrainConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open config"));
  std::stringstream text;
  text << in.rdbuf();
  return ParseTrainConfig(text.str(), path);
}

}  // namespace loom
