// The trainer's data path, shared with tools/preprocess: the tokenizer a
// config asks for, its datasets read through the prepared-dataset cache and
// split, and the multipack sampler over the training rows.
//
//   LOOM_ASSIGN_OR_RETURN(auto tokenizer, MakeTokenizer(config, stderr));
//   LOOM_ASSIGN_OR_RETURN(TrainingData d, LoadTrainingData(config, *tokenizer, vocab, stderr));
//   data::MultipackSampler sampler(Lengths(d.train), SamplerOptionsFor(config, 0, 1));
#ifndef LOOM_TRAIN_DATA_PIPELINE_H_
#define LOOM_TRAIN_DATA_PIPELINE_H_

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/multipack_sampler.h"
#include "data/tokenizer.h"
#include "train/config.h"

namespace loom {

// base_model's tokenizer.json if present, else tokenizer_config, else the
// byte-level tokenizer. Logs which one to `log`.
absl::StatusOr<std::unique_ptr<data::Tokenizer>> MakeTokenizer(const TrainConfig& config,
                                                               FILE* log);

data::TokenizeOptions TokenizeOptionsFor(const TrainConfig& config, int64_t vocab_size);

struct DatasetReport {
  std::string path;
  bool eval = false;
  data::DatasetStats stats;
  std::string cache;  // the prepared cache's outcome
};

struct TrainingData {
  std::vector<data::Example> train, val;
  std::vector<DatasetReport> reports;
};

// Every dataset (through dataset_prepared_path), merged, split by
// val_set_size (or test_datasets as the eval set). One log line per dataset
// with its counts. Error if no training row is left.
absl::StatusOr<TrainingData> LoadTrainingData(const TrainConfig& config,
                                              const data::Tokenizer& tokenizer, int64_t vocab_size,
                                              FILE* log);

std::vector<int32_t> Lengths(const std::vector<data::Example>& rows);

// Capacity micro_batch_size * sequence_len and one bin per micro-batch
// (varlen rows), or sequence_len and micro_batch_size bins with
// multipack_real_batches.
data::SamplerOptions SamplerOptionsFor(const TrainConfig& config, int64_t dp_rank, int64_t dp_size);

// Row padding: Axolotl's pad_to_sequence_len / pad_to_multiple_of rule.
int64_t PadMultipleFor(const TrainConfig& config);

// Optimizer steps of `epoch`: ceil(micro-batches per rank / gradient
// accumulation), from that epoch's packing when `sampler` is set (it deals
// equal counts to the ranks), else from ceil(ceil(train_rows /
// micro_batch_size) / dp_size).
int64_t EpochStepsFor(const TrainConfig& config, data::MultipackSampler* sampler,
                      int64_t train_rows, int64_t epoch, int64_t dp_size);

struct StepPlan {
  int64_t total_steps = 0;
  int64_t steps_per_epoch = 0;  // of epoch 0
  std::string how;              // the rule used, for logs
};
// max_steps if set; else Axolotl's estimate if sample_packing_eff_est is
// set; else the exact sum over the epochs' own packings (the last epoch
// fractional, as num_epochs allows).
StepPlan PlanSteps(const TrainConfig& config, data::MultipackSampler* sampler,
                   const std::vector<data::Example>& train, int64_t dp_size);

// "first-fit-decreasing, epoch 0: ... bins ... efficiency ..." for logs.
std::string DescribePlan(const data::EpochPlan& plan, const data::SamplerOptions& options);

}  // namespace loom

#endif  // LOOM_TRAIN_DATA_PIPELINE_H_
