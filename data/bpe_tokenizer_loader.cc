// LoadBpeTokenizer: tokenizer.json and tokenizer_config.json to a BpeTokenizer.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/bpe_tokenizer.h"
#include "data/hash.h"
#include "nlohmann/json.hpp"
#include "runtime/status.h"

namespace loom::data {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

absl::StatusOr<json> ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  return j;
}

struct Where {
  std::string path;
  absl::Status Error(const std::string& field, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", field, ": ", what));
  }
};

bool Flag(const json& j, const char* key, bool fallback = false) {
  return j.contains(key) && j[key].is_boolean() ? j[key].get<bool>() : fallback;
}

absl::Status ParsePreTokenizer(const json& pre, const Where& w, BpeTokenizer::Rules* rules) {
  if (pre.is_null()) {
    return w.Error("pre_tokenizer", "a byte-level BPE needs a ByteLevel pre-tokenizer, got null");
  }
  const std::string type = pre.value("type", "");
  if (type == "ByteLevel") {
    rules->use_split = Flag(pre, "use_regex", true);
    rules->pattern = SplitPattern::kGpt2;
    rules->add_prefix_space = Flag(pre, "add_prefix_space");
    return absl::OkStatus();
  }
  if (type != "Sequence" || !pre.contains("pretokenizers") || !pre["pretokenizers"].is_array()) {
    return w.Error("pre_tokenizer", absl::StrCat("expected ByteLevel or Sequence[Split, "
                                                 "ByteLevel], got ",
                                                 pre.dump().substr(0, 200)));
  }
  const json& seq = pre["pretokenizers"];
  if (seq.size() != 2 || seq[0].value("type", "") != "Split" ||
      seq[1].value("type", "") != "ByteLevel") {
    return w.Error("pre_tokenizer.pretokenizers", "expected [Split, ByteLevel]");
  }
  const json& split = seq[0];
  const std::string regex = split.contains("pattern") && split["pattern"].contains("Regex") &&
                                    split["pattern"]["Regex"].is_string()
                                ? split["pattern"]["Regex"].get<std::string>()
                                : "";
  if (regex == kLlama3SplitRegex) {
    rules->pattern = SplitPattern::kLlama3;
  } else if (regex == kGpt2SplitRegex) {
    rules->pattern = SplitPattern::kGpt2;
  } else {
    return w.Error("pre_tokenizer.pretokenizers[0].pattern.Regex",
                   absl::StrCat("only the GPT-2 and Llama-3 split patterns are built in, got \"",
                                regex, "\""));
  }
  if (split.value("behavior", "") != "Isolated" || Flag(split, "invert")) {
    return w.Error("pre_tokenizer.pretokenizers[0]", "expected behavior Isolated, invert false");
  }
  if (Flag(seq[1], "use_regex", true)) {
    return w.Error("pre_tokenizer.pretokenizers[1].use_regex", "expected false after a Split");
  }
  rules->use_split = true;
  rules->add_prefix_space = Flag(seq[1], "add_prefix_space");
  return absl::OkStatus();
}

// TemplateProcessing's "single": whether it starts / ends with a special token.
absl::Status ParsePostProcessor(const json& post, const Where& w,
                                const absl::flat_hash_map<std::string, int32_t>& ids,
                                BpeTokenizer::Rules* rules) {
  if (post.is_null()) return absl::OkStatus();
  const std::string type = post.value("type", "");
  if (type == "ByteLevel") return absl::OkStatus();
  if (type == "Sequence" && post.contains("processors")) {
    for (const json& p : post["processors"]) {
      LOOM_RETURN_IF_ERROR(ParsePostProcessor(p, w, ids, rules));
    }
    return absl::OkStatus();
  }
  if (type != "TemplateProcessing" || !post.contains("single") || !post["single"].is_array()) {
    return w.Error("post_processor",
                   absl::StrCat("expected ByteLevel or TemplateProcessing, got ", type));
  }
  const json& single = post["single"];
  auto special = [&](const json& piece) -> std::optional<int32_t> {
    if (!piece.contains("SpecialToken")) return std::nullopt;
    auto it = ids.find(piece["SpecialToken"].value("id", ""));
    if (it == ids.end()) return std::nullopt;
    return it->second;
  };
  for (size_t i = 0; i < single.size(); ++i) {
    std::optional<int32_t> id = special(single[i]);
    if (!id.has_value()) continue;
    if (i == 0) {
      rules->adds_bos = true;
      rules->bos_id = *id;
    } else if (i + 1 == single.size()) {
      rules->adds_eos = true;
      rules->eos_id = *id;
    }
  }
  return absl::OkStatus();
}

std::string TokenContent(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return "";
}

}  // namespace

bool HasHfTokenizer(const std::string& folder) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(folder) / "tokenizer.json", ec);
}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> LoadBpeTokenizer(const std::string& path) {
  std::error_code ec;
  const fs::path dir = fs::is_directory(path, ec) ? fs::path(path) : fs::path(path).parent_path();
  const std::string file = fs::is_directory(path, ec) ? (dir / "tokenizer.json").string() : path;
  const Where w{file};
  LOOM_ASSIGN_OR_RETURN(json tj, ReadJson(file));
  if (!tj.is_object() || !tj.contains("model") || !tj["model"].is_object()) {
    return w.Error("model", "missing (expected a Hugging Face tokenizer.json)");
  }
  const json& model = tj["model"];
  if (model.value("type", "") != "BPE") {
    return w.Error("model.type",
                   absl::StrCat("only BPE is supported, got \"", model.value("type", "?"), "\""));
  }
  if (Flag(model, "byte_fallback")) return w.Error("model.byte_fallback", "must be false");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model[key].is_null() && model[key] != "") {
      return w.Error(absl::StrCat("model.", key), "is not supported in a byte-level BPE");
    }
  }
  if (tj.contains("normalizer") && !tj["normalizer"].is_null()) {
    return w.Error("normalizer", absl::StrCat("only null is supported, got ",
                                              tj["normalizer"].value("type", "?")));
  }
  absl::flat_hash_map<std::string, int32_t> vocab;
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return w.Error("model.vocab", "expected a map of token -> id");
  }
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_integer())
      return w.Error("model.vocab", it.key() + ": id must be an integer");
    vocab[it.key()] = it.value().get<int32_t>();
  }
  std::vector<std::pair<std::string, std::string>> merges;
  if (model.contains("merges")) {
    const json& m = model["merges"];
    for (size_t i = 0; i < m.size(); ++i) {
      if (m[i].is_string()) {
        std::vector<std::string> parts = absl::StrSplit(m[i].get<std::string>(), ' ');
        if (parts.size() != 2) {
          return w.Error(absl::StrCat("model.merges[", i, "]"), "expected \"left right\"");
        }
        merges.emplace_back(parts[0], parts[1]);
      } else if (m[i].is_array() && m[i].size() == 2 && m[i][0].is_string() &&
                 m[i][1].is_string()) {
        merges.emplace_back(m[i][0].get<std::string>(), m[i][1].get<std::string>());
      } else {
        return w.Error(absl::StrCat("model.merges[", i, "]"),
                       "expected \"left right\" or [left, right]");
      }
    }
  }
  std::vector<BpeTokenizer::AddedToken> added;
  absl::flat_hash_map<std::string, int32_t> ids = vocab;
  if (tj.contains("added_tokens") && tj["added_tokens"].is_array()) {
    for (const json& a : tj["added_tokens"]) {
      BpeTokenizer::AddedToken t;
      t.content = a.value("content", "");
      t.id = a.value("id", -1);
      t.special = Flag(a, "special");
      t.lstrip = Flag(a, "lstrip");
      t.rstrip = Flag(a, "rstrip");
      if (t.id < 0 || t.content.empty()) {
        return w.Error("added_tokens",
                       absl::StrCat("an entry needs an id >= 0 and a content: ", a.dump()));
      }
      ids[t.content] = t.id;
      added.push_back(t);
    }
  }
  BpeTokenizer::Rules rules;
  rules.ignore_merges = Flag(model, "ignore_merges");
  LOOM_RETURN_IF_ERROR(ParsePreTokenizer(tj.value("pre_tokenizer", json()), w, &rules));
  LOOM_RETURN_IF_ERROR(ParsePostProcessor(tj.value("post_processor", json()), w, ids, &rules));

  // tokenizer_config.json: BOS/EOS/PAD names, add_bos/eos overrides, chat template.
  uint64_t fingerprint = 0;
  LOOM_ASSIGN_OR_RETURN(fingerprint, HashFile(file));
  const std::string config_path = (dir / "tokenizer_config.json").string();
  if (fs::is_regular_file(config_path, ec)) {
    const Where cw{config_path};
    LOOM_ASSIGN_OR_RETURN(json cj, ReadJson(config_path));
    LOOM_ASSIGN_OR_RETURN(uint64_t ch, HashFile(config_path));
    fingerprint = Hash64(HexHash(ch), fingerprint);
    auto lookup = [&](const char* key, int32_t* out) -> absl::Status {
      if (!cj.contains(key) || cj[key].is_null()) return absl::OkStatus();
      const std::string content = TokenContent(cj[key]);
      auto it = ids.find(content);
      if (it == ids.end()) {
        return cw.Error(key, absl::StrCat("token \"", content, "\" is not in the vocabulary"));
      }
      *out = it->second;
      return absl::OkStatus();
    };
    int32_t bos = -1;
    LOOM_RETURN_IF_ERROR(lookup("bos_token", &bos));
    if (bos >= 0 && !rules.adds_bos) rules.bos_id = bos;
    LOOM_RETURN_IF_ERROR(lookup("eos_token", &rules.eos_id));
    LOOM_RETURN_IF_ERROR(lookup("pad_token", &rules.pad_id));
    if (cj.contains("add_bos_token") && cj["add_bos_token"].is_boolean()) {
      rules.adds_bos = cj["add_bos_token"].get<bool>();
      if (rules.adds_bos && bos >= 0) rules.bos_id = bos;
    }
    if (cj.contains("add_eos_token") && cj["add_eos_token"].is_boolean()) {
      rules.adds_eos = cj["add_eos_token"].get<bool>();
    }
    if (cj.contains("chat_template")) {
      const json& t = cj["chat_template"];
      if (t.is_string()) {
        rules.chat_template = t.get<std::string>();
      } else if (t.is_array()) {  // [{name, template}]: the "default" one
        for (const json& e : t) {
          if (e.value("name", "") == "default") rules.chat_template = e.value("template", "");
        }
      }
    }
  }
  if (rules.adds_bos && rules.bos_id < 0) {
    return w.Error("post_processor", "adds a BOS token that is not in the vocabulary");
  }
  if (rules.eos_id < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        config_path, ": no eos_token (training needs one; expected in tokenizer_config.json)"));
  }
  if (rules.pad_id < 0) rules.pad_id = rules.eos_id;  // Axolotl's and transformers' usual fallback
  rules.fingerprint = absl::StrCat("bpe ", HexHash(fingerprint));
  auto tok = std::make_unique<BpeTokenizer>(vocab, merges, std::move(added), std::move(rules));
  if (!tok->build_error().empty()) return w.Error("model", tok->build_error());
  return tok;
}

}  // namespace loom::data
