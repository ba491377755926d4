// The training loop: model, data, AdamW with a schedule, gradient
// accumulation, clipping, evaluation, logging and checkpoints, driven by one
// TrainConfig. It never mentions a parallel strategy; those are applied to
// the model by separate functions (later issues).
//
//   LOOM_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> t, Trainer::Create(config));
//   LOOM_ASSIGN_OR_RETURN(TrainSummary s, t->Run());
//
// Loss normalization: each optimizer step sums the per-token cross-entropy
// of all its micro-batches and divides by the number of trainable tokens of
// the whole step (not per micro-batch), so accumulation and batch layout
// never change the math: 2 micro-batches of B rows give the update of one
// batch of 2B rows.
#ifndef LOOM_TRAIN_TRAINER_H_
#define LOOM_TRAIN_TRAINER_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/collators.h"
#include "data/dataset.h"
#include "data/multipack_sampler.h"
#include "data/tokenizer.h"
#include "model/llama.h"
#include "runtime/optim/adamw.h"
#include "train/config.h"
#include "train/data_parallel.h"
#include "train/evaluate.h"
#include "train/lr_schedule.h"

namespace loom {

struct StepStats {
  double loss = 0;       // mean over the step's trainable tokens
  double grad_norm = 0;  // before clipping
  double lr = 0;
  int64_t tokens = 0;  // non-padding input tokens
  int64_t trainable_tokens = 0;
  double seconds = 0;
  bool skipped = false;  // non-finite gradient: no update was made
};

struct TrainSummary {
  int64_t steps = 0;
  double first_loss = 0, last_loss = 0;
  std::optional<EvalResult> initial_eval, final_eval;
  double seconds = 0;
  int64_t tokens = 0;
  std::string output_dir;
};

class Trainer {
 public:
  // Loads or initializes the model, reads and splits the data, sets up the
  // optimizer. Errors: unreadable model or data, token ids the model's
  // vocabulary cannot hold, no training rows left.
  //
  // With `dp` (not owned) this trainer is one data-parallel replica, with
  // Axolotl's batch semantics: micro_batch_size and
  // gradient_accumulation_steps are per rank, so an optimizer step covers
  // micro_batch_size x gradient_accumulation_steps x dp.size() rows (or
  // packed bins), and rank r takes the global micro-batches r, r + n, ...
  // (n = dp.size()) in the order one rank would visit them. Hence n ranks
  // with accumulation a make exactly the updates of one rank with
  // accumulation n * a. Token counts and gradients are summed over the group
  // (train/data_parallel.h); only rank 0 writes outputs.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const TrainConfig& config,
                                                         DataParallel* dp = nullptr);

  // Trains for total_steps() steps; logs progress to `log`, metrics to
  // output_dir/metrics.jsonl, and writes the final model (and checkpoint-N
  // folders every save_steps) to output_dir as Hugging Face safetensors +
  // config.json.
  absl::StatusOr<TrainSummary> Run(FILE* log = stderr);

  // One optimizer update from these micro-batches (see the header comment),
  // at the current schedule's learning rate.
  StepStats Step(const std::vector<data::Batch>& micro_batches);
  // The next step of the schedule, on its micro-batches of the training set.
  StepStats TrainOneStep() { return Step(StepBatches(step_)); }

  int64_t total_steps() const { return total_steps_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t step() const { return step_; }
  LlamaForCausalLM& model() { return *model_; }
  AdamW& optimizer() { return *optimizer_; }
  const std::vector<data::Example>& train_examples() const { return train_; }
  const std::vector<data::Example>& val_examples() const { return val_; }
  const data::Tokenizer& tokenizer() const { return *tokenizer_; }
  // Model FLOPs of one training token at row length `tokens` (forward and
  // backward: 6 per weight plus causal attention).
  double FlopsPerToken(int64_t tokens) const;

 private:
  Trainer() = default;
  // The micro-batches of optimizer step `step` (0-based), in order.
  std::vector<data::Batch> StepBatches(int64_t step);
  // Optimizer steps of `epoch` (packing: from that epoch's packing).
  int64_t EpochSteps(int64_t epoch);
  // The epoch of global step `step` and the step's index inside it.
  std::pair<int64_t, int64_t> EpochOf(int64_t step);
  EvalResult RunEval();
  absl::Status Save(const std::string& dir);

  TrainConfig config_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  std::unique_ptr<LlamaForCausalLM> model_;
  std::unique_ptr<AdamW> optimizer_;
  LrSchedule schedule_;
  std::vector<data::Example> train_, val_;
  int64_t micro_batches_per_epoch_ = 0, steps_per_epoch_ = 0, total_steps_ = 0;
  int64_t step_ = 0;
  std::vector<int64_t> order_;  // current epoch's example order
  int64_t order_epoch_ = -1;
  DataParallel* data_parallel_ = nullptr;
  // ---- Data path (data/): packing, padding, and this process's place among
  // the data-parallel ranks (rank 0 of 1 until the data-parallel work wires it).
  std::optional<data::MultipackSampler> sampler_;  // set iff sample_packing
  int64_t pad_multiple_ = 1;
  int64_t dp_rank_ = 0, dp_size_ = 1;
  std::vector<int64_t> epoch_steps_;  // steps of epochs 0, 1, ... computed so far
};

}  // namespace loom

#endif  // LOOM_TRAIN_TRAINER_H_
