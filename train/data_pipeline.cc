#include "train/data_pipeline.h"

#include <cmath>

#include "absl/strings/str_format.h"
#include "data/bpe_tokenizer.h"
#include "data/collators.h"
#include "data/prepared_cache.h"
#include "runtime/status.h"

namespace loom {

absl::StatusOr<std::unique_ptr<data::Tokenizer>> MakeTokenizer(const TrainConfig& config,
                                                               FILE* log) {
  std::string source;
  if (!config.base_model.empty() && data::HasHfTokenizer(config.base_model)) {
    source = config.base_model;
  } else if (!config.tokenizer_config.empty()) {
    source = config.tokenizer_config;
  }
  if (source.empty()) {
    std::fprintf(log, "tokenizer: byte-level (256 bytes + BOS, EOS, PAD)\n");
    return std::make_unique<data::ByteTokenizer>();
  }
  LOOM_ASSIGN_OR_RETURN(std::unique_ptr<data::BpeTokenizer> tok, data::LoadBpeTokenizer(source));
  std::fprintf(log, "tokenizer: %s (byte-level BPE, %lld ids, BOS %d%s, EOS %d, PAD %d)\n",
               source.c_str(), (long long)tok->vocab_size(), tok->bos_id(),
               tok->adds_bos() ? " added" : " not added", tok->eos_id(), tok->pad_id());
  return std::unique_ptr<data::Tokenizer>(std::move(tok));
}

data::TokenizeOptions TokenizeOptionsFor(const TrainConfig& config, int64_t vocab_size) {
  return {.sequence_len = config.sequence_len,
          .train_on_inputs = config.train_on_inputs,
          .vocab_size = vocab_size,
          .excess_length_strategy = config.excess_length_strategy,
          .min_sample_len = config.min_sample_len,
          .chat_template = config.chat_template};
}

namespace {

absl::StatusOr<std::vector<data::Example>> LoadOne(const TrainConfig& config,
                                                   const data::DatasetSpec& spec,
                                                   const data::Tokenizer& tokenizer,
                                                   const data::TokenizeOptions& options, bool eval,
                                                   FILE* log, TrainingData* out) {
  DatasetReport report{.path = spec.path, .eval = eval};
  data::CacheOutcome outcome;
  std::string note;
  LOOM_ASSIGN_OR_RETURN(std::vector<data::Example> rows,
                        data::LoadDatasetCached(config.dataset_prepared_path, spec, tokenizer,
                                                options, &report.stats, &outcome, &note));
  report.cache = data::CacheOutcomeName(outcome);
  const char* what = eval ? "eval data" : "data";
  if (!note.empty()) std::fprintf(log, "%s: %s\n", what, note.c_str());
  const data::DatasetStats& st = report.stats;
  std::fprintf(log,
               "%s: %s: %lld rows, %lld kept (%lld longer than sequence_len %lld %s, %lld shorter "
               "than %lld, %lld with nothing to train dropped), %lld tokens, %lld trainable; "
               "prepared cache %s\n",
               what, spec.path.c_str(), (long long)st.rows, (long long)st.kept,
               (long long)(st.dropped_too_long + st.truncated), (long long)config.sequence_len,
               st.truncated > 0 ? "truncated" : "dropped", (long long)st.dropped_too_short,
               (long long)config.min_sample_len, (long long)st.dropped_untrained,
               (long long)st.tokens, (long long)st.trainable_tokens, report.cache.c_str());
  out->reports.push_back(std::move(report));
  return rows;
}

}  // namespace

absl::StatusOr<TrainingData> LoadTrainingData(const TrainConfig& config,
                                              const data::Tokenizer& tokenizer, int64_t vocab_size,
                                              FILE* log) {
  const data::TokenizeOptions options = TokenizeOptionsFor(config, vocab_size);
  TrainingData d;
  std::vector<data::Example> all;
  for (const data::DatasetSpec& spec : config.datasets) {
    LOOM_ASSIGN_OR_RETURN(std::vector<data::Example> rows,
                          LoadOne(config, spec, tokenizer, options, false, log, &d));
    all.insert(all.end(), std::make_move_iterator(rows.begin()),
               std::make_move_iterator(rows.end()));
  }
  LOOM_ASSIGN_OR_RETURN(data::TrainValSplit split,
                        data::ShuffleAndSplit(std::move(all), config.val_set_size, config.seed));
  d.train = std::move(split.train);
  d.val = std::move(split.val);
  for (const data::DatasetSpec& spec : config.test_datasets) {
    LOOM_ASSIGN_OR_RETURN(std::vector<data::Example> rows,
                          LoadOne(config, spec, tokenizer, options, true, log, &d));
    d.val.insert(d.val.end(), std::make_move_iterator(rows.begin()),
                 std::make_move_iterator(rows.end()));
  }
  if (d.train.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.config_path, ": no training rows left after filtering and the split"));
  }
  return d;
}

std::vector<int32_t> Lengths(const std::vector<data::Example>& rows) {
  std::vector<int32_t> out;
  out.reserve(rows.size());
  for (const data::Example& e : rows) out.push_back(int32_t(e.input_ids.size()));
  return out;
}

data::SamplerOptions SamplerOptionsFor(const TrainConfig& config, int64_t dp_rank,
                                       int64_t dp_size) {
  const bool real = config.multipack_real_batches;
  return {.pack = {.capacity =
                       real ? config.sequence_len : config.micro_batch_size * config.sequence_len,
                   .group_size = config.sample_packing_group_size,
                   .bin_size = config.sample_packing_bin_size,
                   .sequential = config.sample_packing_sequentially,
                   .seed = config.seed},
          .bins_per_micro_batch = real ? config.micro_batch_size : 1,
          .dp_rank = dp_rank,
          .dp_size = dp_size};
}

int64_t PadMultipleFor(const TrainConfig& config) {
  return data::PadMultiple(config.pad_to_sequence_len.value_or(config.sample_packing),
                           config.pad_to_multiple_of, config.sequence_len);
}

std::string DescribePlan(const data::EpochPlan& plan, const data::SamplerOptions& o) {
  return absl::StrFormat(
      "%s, epoch %d: %d bins of %d tokens (%d per micro-batch), efficiency %.4f = %d tokens / "
      "(bins * capacity); %d micro-batches per rank (%d bins split, %d padding bins to even out "
      "%d ranks; no sample dropped)",
      o.pack.sequential ? "sequential" : "first-fit-decreasing", plan.epoch, plan.packed_bins,
      o.pack.capacity, o.bins_per_micro_batch, plan.efficiency, plan.bins.tokens,
      plan.micro_batches_per_rank, plan.split_bins, plan.empty_bins, o.dp_size);
}

int64_t EpochStepsFor(const TrainConfig& config, data::MultipackSampler* sampler,
                      int64_t train_rows, int64_t epoch, int64_t dp_size) {
  const int64_t ga = config.gradient_accumulation_steps, mbs = config.micro_batch_size;
  if (sampler == nullptr) {
    const int64_t per_rank = ((train_rows + mbs - 1) / mbs + dp_size - 1) / dp_size;
    return (per_rank + ga - 1) / ga;
  }
  absl::StatusOr<const data::EpochPlan*> plan = sampler->Plan(epoch);
  LOOM_CHECK_OK(plan.status());  // the options were checked on epoch 0
  return std::max<int64_t>(1, ((*plan)->micro_batches_per_rank + ga - 1) / ga);
}

StepPlan PlanSteps(const TrainConfig& config, data::MultipackSampler* sampler,
                   const std::vector<data::Example>& train, int64_t dp_size) {
  StepPlan p;
  const int64_t rows = int64_t(train.size());
  p.steps_per_epoch = EpochStepsFor(config, sampler, rows, 0, dp_size);
  if (config.max_steps > 0) {
    p.total_steps = config.max_steps;
    p.how = "max_steps";
  } else if (sampler != nullptr && config.sample_packing_eff_est > 0) {
    int64_t tokens = 0;
    for (const data::Example& e : train) tokens += int64_t(e.input_ids.size());
    const int64_t batch = config.micro_batch_size * config.gradient_accumulation_steps * dp_size;
    p.total_steps = data::EstimatedTotalSteps(tokens, config.sample_packing_eff_est,
                                              config.sequence_len, batch, config.num_epochs);
    p.how = absl::StrFormat(
        "Axolotl's estimate from sample_packing_eff_est %.3f: (floor(0.99 * %d tokens / eff / %d) "
        "// %d - 1) * %g epochs",
        config.sample_packing_eff_est, tokens, config.sequence_len, batch, config.num_epochs);
  } else {
    const int64_t whole = int64_t(std::floor(config.num_epochs));
    int64_t total = 0;
    for (int64_t e = 0; e < whole; ++e) total += EpochStepsFor(config, sampler, rows, e, dp_size);
    const double frac = config.num_epochs - double(whole);
    if (frac > 0) {
      total +=
          int64_t(std::ceil(frac * double(EpochStepsFor(config, sampler, rows, whole, dp_size))));
    }
    p.total_steps = std::max<int64_t>(1, total);
    p.how = sampler != nullptr ? "the sum over each epoch's own packing" : "num_epochs";
  }
  return p;
}

}  // namespace loom
