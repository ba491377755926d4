// Datasets for training and evaluation: local jsonl files turned into
// tokenized examples with label masks, Axolotl's dataset formats.
//
//   DatasetSpec spec{.path = "train.jsonl", .type = "alpaca"};
//   LOOM_ASSIGN_OR_RETURN(std::vector<Example> rows,
//                         LoadDataset(spec, ByteTokenizer(), {.sequence_len = 256}, &stats));
//
// Row formats (one JSON object per line):
//   type "completion"  {"text": "..."} (field name: DatasetSpec::field): BOS + text + EOS,
//                       every token trained.
//   type "pretokenized" {"input_ids": [..], "labels": [..]?}: used as given
//                       (labels default to input_ids; -100 = not trained).
//   type "alpaca"      {"instruction", "input"?, "output"}: Axolotl's alpaca prompt
//                       ("Below is an instruction ... ### Response:\n"); only the
//                       output and EOS are trained unless train_on_inputs.
//   a custom format    (`type:` given as a map in the YAML, see PromptFormat):
//                       same masking as alpaca with the user's template.
//   type ""            inferred per file from the first row: input_ids ->
//                       pretokenized, instruction+output -> alpaca, else completion.
// Prompt rows (alpaca and custom) also keep the prompt and the answer, so
// evaluation can decode greedily from the prompt and compare the answer.
#ifndef LOOM_DATA_DATASET_H_
#define LOOM_DATA_DATASET_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/example.h"
#include "data/tokenizer.h"

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
  std::string path;                    // local .jsonl file (already resolved)
  std::string type;                    // "", "completion", "pretokenized", "alpaca", or "custom"
  std::string field = "text";          // completion's text field
  std::optional<PromptFormat> format;  // set iff type == "custom"
};

struct TokenizeOptions {
  int64_t sequence_len = 512;
  bool train_on_inputs = false;  // also train prompt tokens (alpaca, custom)
  // The model's vocabulary: pretokenized ids must be below it, and text rows
  // need it to hold the tokenizer's ids. 0: the tokenizer's vocab_size.
  int64_t vocab_size = 0;
};

struct DatasetStats {
  int64_t rows = 0;               // rows read
  int64_t kept = 0;               // examples returned
  int64_t dropped_too_long = 0;   // longer than sequence_len (Axolotl's `drop`)
  int64_t dropped_untrained = 0;  // no token left to train
  int64_t tokens = 0;             // tokens kept
  int64_t trainable_tokens = 0;   // labels != kIgnoreIndex kept
};

// Reads and tokenizes one dataset. Rows longer than sequence_len tokens and
// rows with nothing to train are dropped and counted in `stats` (never
// silently). Errors name the file and line: a line that is not a JSON
// object, a missing or mistyped field, ids out of the tokenizer's range,
// labels of another length than input_ids.
absl::StatusOr<std::vector<Example>> LoadDataset(const DatasetSpec& spec,
                                                 const Tokenizer& tokenizer,
                                                 const TokenizeOptions& options,
                                                 DatasetStats* stats);

// Splits merged examples as Axolotl does: shuffle the merged list with `seed`,
// then the last `val_set_size` rows (a count if >= 1, else a fraction of the
// total, rounded up) become the evaluation set. val_set_size 0: no eval set.
struct TrainValSplit {
  std::vector<Example> train;
  std::vector<Example> val;
};
absl::StatusOr<TrainValSplit> ShuffleAndSplit(std::vector<Example> examples, double val_set_size,
                                              uint64_t seed);

}  // namespace loom::data

#endif  // LOOM_DATA_DATASET_H_
