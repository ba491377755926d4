// What a dataset is and how to tokenize it: the `datasets:` entries of the
// training config and the options that change the tokenized result (every
// field here is part of the prepared-dataset cache key).
//
//   DatasetSpec spec{.path = "train.jsonl", .type = "chat_template"};
//   TokenizeOptions options{.sequence_len = 2048, .chat_template = "llama3"};
#ifndef LOOM_DATA_DATASET_SPEC_H_
#define LOOM_DATA_DATASET_SPEC_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace loom::data {

// Axolotl's user-defined prompt format (`type: {format: ..., ...}`).
// `format` may contain {instruction} and {input}; `no_input_format` is used
// for rows whose input field is missing or empty (defaults to `format`).
// `system_prompt`, if set, is rendered with `system_format` ("{system}") and
// put before the prompt.
struct PromptFormat {
  std::string field_instruction = "instruction";
  std::string field_input = "input";
  std::string field_output = "output";
  std::string format;
  std::string no_input_format;
  std::string system_prompt;
  std::string system_format = "{system}";
};

struct DatasetSpec {
  std::string path;  // a local .jsonl / .json file or a folder of them (resolved)
  // "" (inferred per file from the first row), completion, pretokenized,
  // alpaca, chat_template, or custom (with `format`).
  std::string type;
  std::string field = "text";          // completion's text field
  std::optional<PromptFormat> format;  // set iff type == "custom"
  // chat_template rows (Axolotl's keys and defaults).
  std::string field_messages = "messages";
  std::map<std::string, std::string> message_property_mappings = {{"role", "role"},
                                                                  {"content", "content"}};
  std::vector<std::string> roles_to_train = {"assistant"};
  std::string train_on_eos = "turn";  // all | turn | last | none
  std::string chat_template;          // this dataset's template; "" = TokenizeOptions'
};

struct TokenizeOptions {
  int64_t sequence_len = 512;
  bool train_on_inputs = false;  // also train prompt tokens
  // The model's vocabulary: pretokenized ids must be below it, and text rows
  // need it to hold the tokenizer's ids. 0: the tokenizer's vocab_size.
  int64_t vocab_size = 0;
  // Rows longer than sequence_len: drop (Axolotl's default), truncate to
  // sequence_len, or raise an error naming the row.
  std::string excess_length_strategy = "drop";
  int64_t min_sample_len = 2;  // shorter rows are dropped
  std::string chat_template = "tokenizer_default";
};

}  // namespace loom::data

#endif  // LOOM_DATA_DATASET_SPEC_H_
