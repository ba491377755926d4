// Row formats: one JSON row to a tokenized Example with its label mask.
//
//   LOOM_ASSIGN_OR_RETURN(Example e, FormatRow(row, spec, "alpaca", tokenizer, options, at));
//
//   completion    {"text": ...} (field: DatasetSpec::field): [BOS] + text + EOS, all trained.
//   pretokenized  {"input_ids": [..], "labels": [..]?}: as given (labels default to the ids).
//   alpaca        {"instruction", "input"?, "output"}: Axolotl's alpaca prompt; the prompt
//                 ([BOS] + template) is masked unless train_on_inputs; output + EOS trained.
//   custom        the same with the user's template (PromptFormat).
//   chat_template {"messages": [{"role", "content", "training"?}, ...]} rendered by the
//                 built-in Llama-3 / ChatML template (data/chat_template.h).
// BOS is added when the tokenizer adds it (its post-processor / add_bos_token).
// Errors name the file, line and field, and say what was expected.
#ifndef LOOM_DATA_PROMPT_FORMATS_H_
#define LOOM_DATA_PROMPT_FORMATS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "data/chat_template.h"
#include "data/dataset_spec.h"
#include "data/example.h"
#include "data/jsonl_reader.h"
#include "data/tokenizer.h"
#include "nlohmann/json.hpp"

namespace loom::data {

// The row types LoadDataset accepts.
const std::vector<std::string>& RowTypes();

// The type of a row with no declared type: input_ids -> pretokenized,
// instruction + output -> alpaca, messages / conversations -> chat_template,
// text -> completion.
absl::StatusOr<std::string> InferRowType(const nlohmann::json& row, const RowLocation& at);

// `chat` is required for chat_template rows.
absl::StatusOr<Example> FormatRow(const nlohmann::json& row, const DatasetSpec& spec,
                                  const std::string& type, const Tokenizer& tokenizer,
                                  const TokenizeOptions& options, const RowLocation& at,
                                  std::optional<ChatTemplate> chat);

}  // namespace loom::data

#endif  // LOOM_DATA_PROMPT_FORMATS_H_
