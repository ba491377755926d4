#include "data/dataset.h"

#include <cmath>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "data/batch.h"
#include "nlohmann/json.hpp"
#include "runtime/status.h"

namespace loom::data {
namespace {

using json = nlohmann::json;

constexpr char kAlpacaWithInput[] =
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";
constexpr char kAlpacaNoInput[] =
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n";

// One row's location, for error messages.
struct Where {
  const std::string& path;
  int64_t line;
  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrFormat("%s:%d: %s", path, line, what));
  }
};

absl::StatusOr<std::string> StringField(const json& row, const std::string& field, const Where& w,
                                        bool optional = false) {
  if (!row.contains(field) || row[field].is_null()) {
    if (optional) return std::string();
    return w.Error(absl::StrCat("missing field '", field, "'"));
  }
  if (!row[field].is_string()) {
    return w.Error(absl::StrCat("field '", field, "' must be a string, got ", row[field].dump()));
  }
  return row[field].get<std::string>();
}

absl::StatusOr<std::vector<int32_t>> IdList(const json& row, const std::string& field,
                                            const Where& w, int64_t vocab, bool labels) {
  const json& v = row[field];
  if (!v.is_array()) return w.Error(absl::StrCat("field '", field, "' must be a list of integers"));
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer()) {
      return w.Error(absl::StrFormat("%s[%d] must be an integer, got %s", field, i, v[i].dump()));
    }
    const int64_t id = v[i].get<int64_t>();
    if ((id < 0 || id >= vocab) && !(labels && id == kIgnoreIndex)) {
      return w.Error(absl::StrFormat("%s[%d] = %d is outside the vocabulary [0, %d)%s", field, i,
                                     id, vocab, labels ? " and is not -100" : ""));
    }
    ids.push_back(int32_t(id));
  }
  return ids;
}

// BOS + prompt + answer + EOS; the prompt (and BOS) is masked unless
// train_on_inputs.
Example PromptExample(const Tokenizer& tok, const std::string& prompt, const std::string& answer,
                      bool train_on_inputs) {
  Example e;
  e.input_ids.push_back(tok.bos_id());
  for (int32_t id : tok.Encode(prompt)) e.input_ids.push_back(id);
  e.prompt_len = int64_t(e.input_ids.size());
  for (int32_t id : tok.Encode(answer)) e.input_ids.push_back(id);
  e.input_ids.push_back(tok.eos_id());
  e.labels = e.input_ids;
  // BOS is never a target (nothing precedes it); the prompt only if asked.
  const int64_t masked = train_on_inputs ? 1 : e.prompt_len;
  for (int64_t i = 0; i < masked; ++i) e.labels[size_t(i)] = kIgnoreIndex;
  e.answer = answer;
  return e;
}

absl::StatusOr<Example> ParseRow(const json& row, const DatasetSpec& spec, const std::string& type,
                                 const Tokenizer& tok, const TokenizeOptions& options,
                                 const Where& w) {
  if (type == "completion") {
    LOOM_ASSIGN_OR_RETURN(std::string text, StringField(row, spec.field, w));
    Example e;
    e.input_ids.push_back(tok.bos_id());
    for (int32_t id : tok.Encode(text)) e.input_ids.push_back(id);
    e.input_ids.push_back(tok.eos_id());
    e.labels = e.input_ids;
    e.labels[0] = kIgnoreIndex;
    return e;
  }
  if (type == "pretokenized") {
    if (!row.contains("input_ids")) return w.Error("missing field 'input_ids'");
    Example e;
    const int64_t vocab = options.vocab_size > 0 ? options.vocab_size : tok.vocab_size();
    LOOM_ASSIGN_OR_RETURN(e.input_ids, IdList(row, "input_ids", w, vocab, false));
    if (row.contains("labels") && !row["labels"].is_null()) {
      LOOM_ASSIGN_OR_RETURN(e.labels, IdList(row, "labels", w, vocab, true));
      if (e.labels.size() != e.input_ids.size()) {
        return w.Error(absl::StrFormat("'labels' has %d entries but 'input_ids' has %d",
                                       e.labels.size(), e.input_ids.size()));
      }
    } else {
      e.labels = e.input_ids;
    }
    return e;
  }
  // alpaca or custom: a prompt template and an answer.
  const PromptFormat fmt = type == "custom" ? *spec.format : PromptFormat{};
  LOOM_ASSIGN_OR_RETURN(std::string instruction, StringField(row, fmt.field_instruction, w));
  LOOM_ASSIGN_OR_RETURN(std::string input, StringField(row, fmt.field_input, w, true));
  LOOM_ASSIGN_OR_RETURN(std::string output, StringField(row, fmt.field_output, w));
  std::string tmpl;
  if (type == "alpaca") {
    tmpl = input.empty() ? kAlpacaNoInput : kAlpacaWithInput;
  } else {
    tmpl = input.empty() && !fmt.no_input_format.empty() ? fmt.no_input_format : fmt.format;
  }
  std::string prompt =
      absl::StrReplaceAll(tmpl, {{"{instruction}", instruction}, {"{input}", input}});
  if (type == "custom" && !fmt.system_prompt.empty()) {
    prompt = absl::StrReplaceAll(fmt.system_format, {{"{system}", fmt.system_prompt}}) + prompt;
  }
  return PromptExample(tok, prompt, output, options.train_on_inputs);
}

absl::StatusOr<std::string> InferType(const json& row, const Where& w) {
  if (row.contains("input_ids")) return std::string("pretokenized");
  if (row.contains("instruction") && row.contains("output")) return std::string("alpaca");
  if (row.contains("text")) return std::string("completion");
  return w.Error(
      "cannot tell the row format: expected 'text' (completion), 'input_ids' "
      "(pretokenized) or 'instruction' + 'output' (alpaca); set the dataset's type");
}

}  // namespace

absl::StatusOr<std::vector<Example>> LoadDataset(const DatasetSpec& spec,
                                                 const Tokenizer& tokenizer,
                                                 const TokenizeOptions& options,
                                                 DatasetStats* stats) {
  DatasetStats local;
  DatasetStats& s = stats != nullptr ? *stats : local;
  s = DatasetStats();
  static const std::vector<std::string> kTypes = {"", "completion", "pretokenized", "alpaca",
                                                  "custom"};
  if (std::find(kTypes.begin(), kTypes.end(), spec.type) == kTypes.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.path, ": unknown dataset type '", spec.type,
                     "' (completion, pretokenized, alpaca, or a custom format map)"));
  }
  if (spec.type == "custom" && (!spec.format.has_value() || spec.format->format.empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.path, ": a custom dataset type needs a 'format' template"));
  }
  std::ifstream in(spec.path);
  if (!in) return absl::NotFoundError(absl::StrCat(spec.path, ": cannot open dataset file"));
  std::vector<Example> out;
  std::string type = spec.type, line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const Where w{spec.path, line_no};
    json row = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded()) return w.Error("not valid JSON");
    if (!row.is_object()) return w.Error("each line must be a JSON object");
    ++s.rows;
    if (type.empty()) {
      LOOM_ASSIGN_OR_RETURN(type, InferType(row, w));
    }
    if (type != "pretokenized" && options.vocab_size > 0 &&
        options.vocab_size < tokenizer.vocab_size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: %s rows need the tokenizer's %d ids, but the model's vocab_size is %d "
          "(use pretokenized rows, or a model with a larger vocabulary)",
          spec.path, type, tokenizer.vocab_size(), options.vocab_size));
    }
    LOOM_ASSIGN_OR_RETURN(Example e, ParseRow(row, spec, type, tokenizer, options, w));
    if (int64_t(e.input_ids.size()) > options.sequence_len) {
      ++s.dropped_too_long;
      continue;
    }
    // Trainable = a label on some token after the first (the first token is
    // never predicted).
    int64_t trainable = 0;
    for (size_t i = 1; i < e.labels.size(); ++i) trainable += e.labels[i] != kIgnoreIndex;
    if (trainable == 0) {
      ++s.dropped_untrained;
      continue;
    }
    ++s.kept;
    s.tokens += int64_t(e.input_ids.size());
    s.trainable_tokens += trainable;
    out.push_back(std::move(e));
  }
  if (s.rows == 0) return absl::InvalidArgumentError(absl::StrCat(spec.path, ": no rows"));
  return out;
}

absl::StatusOr<TrainValSplit> ShuffleAndSplit(std::vector<Example> examples, double val_set_size,
                                              uint64_t seed) {
  const int64_t n = int64_t(examples.size());
  if (!(val_set_size >= 0) || (val_set_size >= 1 && val_set_size != std::floor(val_set_size))) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "val_set_size must be a fraction in [0, 1) or a whole number of rows, got %g",
        val_set_size));
  }
  const int64_t val =
      val_set_size >= 1 ? int64_t(val_set_size) : int64_t(std::ceil(val_set_size * double(n)));
  if (val >= n && val > 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("val_set_size %g takes %d of the %d rows and leaves none to train on",
                        val_set_size, val, n));
  }
  // Epoch -1 keeps this shuffle apart from every training epoch's order.
  const std::vector<int64_t> order = EpochOrder(n, seed, -1);
  TrainValSplit split;
  split.train.reserve(size_t(n - val));
  split.val.reserve(size_t(val));
  for (int64_t i = 0; i < n; ++i) {
    (i < n - val ? split.train : split.val)
        .push_back(std::move(examples[size_t(order[size_t(i)])]));
  }
  return split;
}

}  // namespace loom::data
