// The prepared-dataset cache (Axolotl's dataset_prepared_path): tokenized
// examples stored in one binary file per dataset, read back by mmap, so a
// second run skips tokenization.
//
//   CacheOutcome outcome;
//   LOOM_ASSIGN_OR_RETURN(std::vector<Example> rows,
//       LoadDatasetCached("last_run_prepared", spec, tokenizer, options, &stats, &outcome));
//
// The file is named by a hash of everything that changes the result: the
// bytes of every data file, the dataset spec, the tokenizer (its files'
// bytes), sequence_len, train_on_inputs, excess_length_strategy,
// min_sample_len, chat_template and the model's vocab_size, plus the format
// version. The full key text is stored in the file too and compared, and
// every byte is covered by a checksum: a stale file (any input changed) is a
// miss, a corrupt or truncated one is reported and rebuilt, never used. Files
// are written to a temporary name and renamed, so a crash never leaves a
// half-written cache behind.
//
// Layout (little-endian): "LOOMPREP" u32 version u32 0 | u64 key length, key
// bytes | u64 n, u64 tokens, u64 answer bytes | 8 x i64 stats | i64
// offsets[n+1] | i64 prompt_len[n] | i64 answer_offsets[n+1] | i32
// input_ids[tokens] | i32 labels[tokens] | answers | u64 checksum of all
// before it.
#ifndef LOOM_DATA_PREPARED_CACHE_H_
#define LOOM_DATA_PREPARED_CACHE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"

namespace loom::data {

enum class CacheOutcome { kDisabled, kHit, kMiss, kRebuiltCorrupt };
const char* CacheOutcomeName(CacheOutcome o);

// The key text of a dataset (hashes of its files included).
absl::StatusOr<std::string> PreparedCacheKey(const DatasetSpec& spec, const Tokenizer& tokenizer,
                                             const TokenizeOptions& options);

absl::Status WritePreparedFile(const std::string& file, const std::string& key,
                               const std::vector<Example>& examples, const DatasetStats& stats);
// NotFound if there is no file; DataLoss if it is corrupt or was written
// for another key.
absl::StatusOr<std::vector<Example>> ReadPreparedFile(const std::string& file,
                                                      const std::string& key, DatasetStats* stats);

// LoadDataset through the cache in `cache_dir` ("" disables it). `note`
// receives a line to log when a corrupt file was replaced.
absl::StatusOr<std::vector<Example>> LoadDatasetCached(const std::string& cache_dir,
                                                       const DatasetSpec& spec,
                                                       const Tokenizer& tokenizer,
                                                       const TokenizeOptions& options,
                                                       DatasetStats* stats, CacheOutcome* outcome,
                                                       std::string* note = nullptr);

}  // namespace loom::data

#endif  // LOOM_DATA_PREPARED_CACHE_H_
