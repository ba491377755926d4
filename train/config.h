// The training config: one YAML file with Axolotl's key names.
//
//   LOOM_ASSIGN_OR_RETURN(TrainConfig config, LoadTrainConfig("examples/tiny/train.yaml"));
//
//   base_model: ./my-llama          # a local Hugging Face folder, or:
//   model:                          # a model initialized from scratch
//     hidden_size: 128              #   (config.json keys, see model/llama_config.h)
//     ...
//   datasets:
//     - path: data/train.jsonl      # local .jsonl / .json file or folder
//       type: alpaca                # completion | pretokenized | alpaca | chat_template |
//                                   # {format: ...}
//   test_datasets:                  # or val_set_size: a held-out share of datasets
//     - path: data/eval.jsonl
//       type: alpaca
//   sequence_len: 256
//   micro_batch_size: 8
//   gradient_accumulation_steps: 2
//   num_epochs: 3                   # or max_steps
//   learning_rate: 3.0e-3
//   lr_scheduler: cosine            # cosine | linear | constant
//   warmup_steps: 20
//   output_dir: ./outputs/tiny
//
// Every error names the file, the line and the key, and says what was
// expected: an unknown key (with the closest valid key), a wrong type, a
// value out of range, a missing dataset or model file, or both/neither of
// `base_model` and `model`.
#ifndef LOOM_TRAIN_CONFIG_H_
#define LOOM_TRAIN_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "model/llama_config.h"

namespace loom {

struct TrainConfig {
  std::string config_path;  // the YAML file this came from

  // ---- Model: exactly one of the two.
  std::string base_model;            // local Hugging Face folder (resolved)
  std::optional<LlamaConfig> model;  // `model:` section: train from scratch

  // ---- Data. Relative paths are resolved against the working directory,
  // then against the YAML file's folder; the resolved path is stored.
  std::vector<data::DatasetSpec> datasets;
  double val_set_size = 0.0;  // >= 1: a row count; in (0, 1): a fraction
  // Evaluation sets of their own (Axolotl's key), instead of val_set_size.
  std::vector<data::DatasetSpec> test_datasets;
  int64_t sequence_len = 512;
  bool train_on_inputs = false;
  // Tokenizer: base_model's tokenizer.json if it has one, else this path (a
  // folder with tokenizer.json, or the file; Axolotl's key), else the
  // byte-level tokenizer.
  std::string tokenizer_config;
  std::string chat_template = "tokenizer_default";  // llama3 | chatml | tokenizer_default
  std::string excess_length_strategy = "drop";      // drop | truncate | raise
  int64_t min_sample_len = 2;
  std::string dataset_prepared_path;  // "" = no prepared-dataset cache

  // ---- Sample packing (Axolotl's keys and defaults; data/packer.h).
  bool sample_packing = false;
  std::optional<bool> pad_to_sequence_len;  // unset: = sample_packing
  int64_t pad_to_multiple_of = 0;           // 0: unset (64 when padding to sequence_len)
  int64_t sample_packing_group_size = 100000;
  int64_t sample_packing_bin_size = 200;
  bool sample_packing_sequentially = false;
  double sample_packing_eff_est = 0;  // > 0: Axolotl's step estimate instead of exact counts
  // false (default; our attention takes cu_seqlens): one row of
  // micro_batch_size * sequence_len tokens per micro-batch. true:
  // micro_batch_size rows (bins) of sequence_len.
  bool multipack_real_batches = false;

  // ---- Batching and length of training.
  int64_t micro_batch_size = 1;
  int64_t gradient_accumulation_steps = 1;
  double num_epochs = 1.0;  // fractional epochs allowed, as Axolotl
  int64_t max_steps = 0;    // > 0 overrides num_epochs

  // ---- Optimizer (AdamW) and schedule.
  std::string optimizer = "adamw_torch";  // adamw_torch | adamw_torch_fused (same here)
  double learning_rate = 0.0;             // required, > 0
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;           // 0 disables clipping
  std::string lr_scheduler = "cosine";  // cosine | linear | constant
  int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;         // of total steps; not with warmup_steps
  double cosine_min_lr_ratio = 0.0;  // cosine ends at this fraction of the lr

  // ---- Bookkeeping.
  uint64_t seed = 42;
  std::string output_dir = "./model-out";
  int64_t logging_steps = 1;
  int64_t eval_steps = 0;   // 0: evaluate only at the end (if there is a val set)
  int64_t save_steps = 0;   // 0: save only at the end
  int64_t num_threads = 0;  // 0: every core (Loom's own key)
  // Recompute each decoder layer in backward instead of keeping activations.
  bool gradient_checkpointing = false;

  // ---- Parallelism (Axolotl's keys; unset = 1). Their product is the number of ranks;
  // tools/train starts that many local ranks when no launcher did (collectives/launcher.h).
  // Tensor and context parallelism are rejected until their issues land; dp_shard runs as
  // replicated data parallelism for now.
  int64_t dp_replicate_size = 1;
  int64_t dp_shard_size = 1;
  int64_t context_parallel_size = 1;
  int64_t tensor_parallel_size = 1;
  int64_t world_size() const {
    return dp_replicate_size * dp_shard_size * context_parallel_size * tensor_parallel_size;
  }
};

// Parses `yaml_text`; `source` (a file name) prefixes every error.
absl::StatusOr<TrainConfig> ParseTrainConfig(const std::string& yaml_text,
                                             const std::string& source);
absl::StatusOr<TrainConfig> LoadTrainConfig(const std::string& path);

// Every top-level key the parser accepts (for docs and suggestions).
const std::vector<std::string>& TrainConfigKeys();

}  // namespace loom

#endif  // LOOM_TRAIN_CONFIG_H_
