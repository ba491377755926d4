// Datasets for training and evaluation: local JSON files and folders turned
// into tokenized examples with label masks (row formats in
// data/prompt_formats.h), length handling, and the train/validation split.
//
//   DatasetSpec spec{.path = "train.jsonl", .type = "alpaca"};
//   DatasetStats stats;
//   LOOM_ASSIGN_OR_RETURN(std::vector<Example> rows,
//                         LoadDataset(spec, tokenizer, {.sequence_len = 256}, &stats));
//
// Prompt rows (alpaca and custom) also keep the prompt and the answer, so
// evaluation can decode greedily from the prompt and compare the answer.
#ifndef LOOM_DATA_DATASET_H_
#define LOOM_DATA_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset_spec.h"
#include "data/example.h"
#include "data/tokenizer.h"

namespace loom::data {

struct DatasetStats {
  int64_t rows = 0;               // rows read
  int64_t kept = 0;               // examples returned
  int64_t dropped_too_long = 0;   // longer than sequence_len (excess_length_strategy: drop)
  int64_t truncated = 0;          // cut to sequence_len (excess_length_strategy: truncate)
  int64_t dropped_too_short = 0;  // fewer than min_sample_len tokens
  int64_t dropped_untrained = 0;  // no token left to train
  int64_t tokens = 0;             // tokens kept
  int64_t trainable_tokens = 0;   // labels != kIgnoreIndex kept (first tokens excluded)
};

// Reads and tokenizes one dataset. Long, short and untrainable rows are
// handled as TokenizeOptions says and counted in `stats` (never silently).
// Errors name the file and line: a row that is not a JSON object, a missing
// or mistyped field, ids out of the vocabulary, labels of another length than
// input_ids, a row too long under excess_length_strategy: raise.
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
