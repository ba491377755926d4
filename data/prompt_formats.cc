#include "data/prompt_formats.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
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

absl::StatusOr<std::string> StringField(const json& row, const std::string& field,
                                        const RowLocation& at, bool optional = false) {
  if (!row.contains(field) || row[field].is_null()) {
    if (optional) return std::string();
    return at.Error(absl::StrCat("missing field '", field, "'"));
  }
  if (!row[field].is_string()) {
    return at.Error(absl::StrCat("field '", field, "' must be a string, got ", row[field].dump()));
  }
  return row[field].get<std::string>();
}

absl::StatusOr<std::vector<int32_t>> IdList(const json& row, const std::string& field,
                                            const RowLocation& at, int64_t vocab, bool labels) {
  const json& v = row[field];
  if (!v.is_array()) {
    return at.Error(absl::StrCat("field '", field, "' must be a list of integers"));
  }
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer()) {
      return at.Error(absl::StrFormat("%s[%d] must be an integer, got %s", field, i, v[i].dump()));
    }
    const int64_t id = v[i].get<int64_t>();
    if ((id < 0 || id >= vocab) && !(labels && id == kIgnoreIndex)) {
      return at.Error(absl::StrFormat("%s[%d] = %d is outside the vocabulary [0, %d)%s", field, i,
                                      id, vocab, labels ? " and is not -100" : ""));
    }
    ids.push_back(int32_t(id));
  }
  return ids;
}

// [BOS] + prompt + answer + EOS; the prompt (and BOS) is masked unless
// train_on_inputs.
Example PromptExample(const Tokenizer& tok, const std::string& prompt, const std::string& answer,
                      bool train_on_inputs) {
  Example e;
  if (tok.adds_bos()) e.input_ids.push_back(tok.bos_id());
  for (int32_t id : tok.Encode(prompt)) e.input_ids.push_back(id);
  e.prompt_len = int64_t(e.input_ids.size());
  for (int32_t id : tok.Encode(answer)) e.input_ids.push_back(id);
  e.input_ids.push_back(tok.eos_id());
  e.labels = e.input_ids;
  // The first token is never a target (nothing precedes it); the prompt only if asked.
  const int64_t masked = train_on_inputs ? std::min<int64_t>(1, e.prompt_len) : e.prompt_len;
  for (int64_t i = 0; i < masked; ++i) e.labels[size_t(i)] = kIgnoreIndex;
  e.answer = answer;
  return e;
}

absl::StatusOr<std::vector<ChatMessage>> Messages(const json& row, const DatasetSpec& spec,
                                                  const RowLocation& at) {
  const std::string& field = spec.field_messages;
  if (!row.contains(field)) return at.Error(absl::StrCat("missing field '", field, "'"));
  const json& list = row[field];
  if (!list.is_array() || list.empty()) {
    return at.Error(absl::StrCat("field '", field, "' must be a non-empty list of messages"));
  }
  const std::string role_key = spec.message_property_mappings.at("role");
  const std::string content_key = spec.message_property_mappings.at("content");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    const std::string where = absl::StrCat(field, "[", i, "]");
    if (!m.is_object()) return at.Error(absl::StrCat(where, " must be an object"));
    if (!m.contains(role_key) || !m[role_key].is_string()) {
      return at.Error(absl::StrCat(where, ": missing string field '", role_key, "' (the role)"));
    }
    if (!m.contains(content_key) || !m[content_key].is_string()) {
      return at.Error(
          absl::StrCat(where, ": missing string field '", content_key, "' (the content)"));
    }
    ChatMessage msg{.role = CanonicalRole(m[role_key].get<std::string>()),
                    .content = m[content_key].get<std::string>()};
    static const std::vector<std::string> kRoles = {"system", "user", "assistant", "tool"};
    if (std::find(kRoles.begin(), kRoles.end(), msg.role) == kRoles.end()) {
      return at.Error(absl::StrCat(where, ": unknown role '", m[role_key].get<std::string>(),
                                   "' (expected system, user, assistant, tool, human or gpt)"));
    }
    if (m.contains("training")) {
      if (!m["training"].is_boolean()) {
        return at.Error(absl::StrCat(where, ".training must be true or false"));
      }
      msg.training = m["training"].get<bool>();
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace

const std::vector<std::string>& RowTypes() {
  static const auto* types = new std::vector<std::string>{"",       "completion",    "pretokenized",
                                                          "alpaca", "chat_template", "custom"};
  return *types;
}

absl::StatusOr<std::string> InferRowType(const json& row, const RowLocation& at) {
  if (row.contains("input_ids")) return std::string("pretokenized");
  if (row.contains("instruction") && row.contains("output")) return std::string("alpaca");
  if (row.contains("messages")) return std::string("chat_template");
  if (row.contains("text")) return std::string("completion");
  return at.Error(
      "cannot tell the row format: expected 'text' (completion), 'input_ids' (pretokenized), "
      "'instruction' + 'output' (alpaca) or 'messages' (chat_template); set the dataset's type");
}

absl::StatusOr<Example> FormatRow(const json& row, const DatasetSpec& spec, const std::string& type,
                                  const Tokenizer& tok, const TokenizeOptions& options,
                                  const RowLocation& at, std::optional<ChatTemplate> chat) {
  if (type == "completion") {
    LOOM_ASSIGN_OR_RETURN(std::string text, StringField(row, spec.field, at));
    Example e;
    if (tok.adds_bos()) e.input_ids.push_back(tok.bos_id());
    for (int32_t id : tok.Encode(text)) e.input_ids.push_back(id);
    e.input_ids.push_back(tok.eos_id());
    e.labels = e.input_ids;
    e.labels[0] = kIgnoreIndex;
    return e;
  }
  if (type == "pretokenized") {
    if (!row.contains("input_ids")) return at.Error("missing field 'input_ids'");
    Example e;
    const int64_t vocab = options.vocab_size > 0 ? options.vocab_size : tok.vocab_size();
    LOOM_ASSIGN_OR_RETURN(e.input_ids, IdList(row, "input_ids", at, vocab, false));
    if (row.contains("labels") && !row["labels"].is_null()) {
      LOOM_ASSIGN_OR_RETURN(e.labels, IdList(row, "labels", at, vocab, true));
      if (e.labels.size() != e.input_ids.size()) {
        return at.Error(absl::StrFormat("'labels' has %d entries but 'input_ids' has %d",
                                        e.labels.size(), e.input_ids.size()));
      }
    } else {
      e.labels = e.input_ids;
    }
    return e;
  }
  if (type == "chat_template") {
    LOOM_ASSIGN_OR_RETURN(std::vector<ChatMessage> messages, Messages(row, spec, at));
    absl::StatusOr<Example> e = TokenizeChat(*chat, messages, tok,
                                             {.roles_to_train = spec.roles_to_train,
                                              .train_on_eos = spec.train_on_eos,
                                              .train_on_inputs = options.train_on_inputs});
    if (!e.ok()) return at.Error(std::string(e.status().message()));
    return e;
  }
  // alpaca or custom: a prompt template and an answer.
  const PromptFormat fmt = type == "custom" ? *spec.format : PromptFormat{};
  LOOM_ASSIGN_OR_RETURN(std::string instruction, StringField(row, fmt.field_instruction, at));
  LOOM_ASSIGN_OR_RETURN(std::string input, StringField(row, fmt.field_input, at, true));
  LOOM_ASSIGN_OR_RETURN(std::string output, StringField(row, fmt.field_output, at));
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

}  // namespace loom::data
