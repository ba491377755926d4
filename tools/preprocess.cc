// Axolotl's preprocess: tokenizes a config's datasets (writing the prepared
// dataset when dataset_prepared_path is set), packs them as training would,
// and prints the statistics: rows kept and dropped, tokens, packing
// efficiency, steps per epoch.
//
//   bazel run //tools:preprocess -- --config=examples/tiny/train.yaml
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "model/llama_config.h"
#include "train/config.h"
#include "train/data_pipeline.h"

ABSL_FLAG(std::string, config, "", "the training YAML");
ABSL_FLAG(int64_t, dp_size, 1, "data-parallel ranks to plan for");

namespace loom {
namespace {

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "preprocess: %s\n", std::string(s.message()).c_str());
  return 2;
}

int Main() {
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd != nullptr) {
    if (chdir(wd) != 0) std::fprintf(stderr, "preprocess: cannot enter %s\n", wd);
  }
  if (absl::GetFlag(FLAGS_config).empty()) {
    return Fail(absl::InvalidArgumentError("--config=FILE.yaml is required"));
  }
  absl::StatusOr<TrainConfig> config = LoadTrainConfig(absl::GetFlag(FLAGS_config));
  if (!config.ok()) return Fail(config.status());
  int64_t vocab = 0;
  if (config->model.has_value()) {
    vocab = config->model->vocab_size;
  } else {
    absl::StatusOr<LlamaConfig> mc = LoadLlamaConfig(config->base_model + "/config.json");
    if (!mc.ok()) return Fail(mc.status());
    vocab = mc->vocab_size;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto tokenizer = MakeTokenizer(*config, stdout);
  if (!tokenizer.ok()) return Fail(tokenizer.status());
  absl::StatusOr<TrainingData> d = LoadTrainingData(*config, **tokenizer, vocab, stdout);
  if (!d.ok()) return Fail(d.status());
  const double tokenize_s = Since(t0);

  data::DatasetStats total;
  for (const DatasetReport& r : d->reports) {
    if (r.eval) continue;
    total.rows += r.stats.rows;
    total.kept += r.stats.kept;
    total.dropped_too_long += r.stats.dropped_too_long;
    total.truncated += r.stats.truncated;
    total.dropped_too_short += r.stats.dropped_too_short;
    total.dropped_untrained += r.stats.dropped_untrained;
    total.tokens += r.stats.tokens;
    total.trainable_tokens += r.stats.trainable_tokens;
  }
  int64_t train_tokens = 0;
  for (const data::Example& e : d->train) train_tokens += int64_t(e.input_ids.size());
  std::printf("\n| | |\n|---|---|\n");
  std::printf("| rows read | %lld |\n", (long long)total.rows);
  std::printf("| rows kept | %lld |\n", (long long)total.kept);
  std::printf("| dropped: longer than sequence_len %lld | %lld |\n",
              (long long)config->sequence_len, (long long)total.dropped_too_long);
  std::printf("| truncated to sequence_len | %lld |\n", (long long)total.truncated);
  std::printf("| dropped: shorter than min_sample_len %lld | %lld |\n",
              (long long)config->min_sample_len, (long long)total.dropped_too_short);
  std::printf("| dropped: nothing to train | %lld |\n", (long long)total.dropped_untrained);
  std::printf("| tokens / trainable tokens | %lld / %lld |\n", (long long)total.tokens,
              (long long)total.trainable_tokens);
  std::printf("| train / eval rows | %zu / %zu (%lld train tokens) |\n", d->train.size(),
              d->val.size(), (long long)train_tokens);
  std::printf("| tokenize (or read the prepared cache) | %.3f s |\n", tokenize_s);

  const int64_t dp = absl::GetFlag(FLAGS_dp_size);
  std::optional<data::MultipackSampler> sampler;
  if (config->sample_packing) {
    sampler.emplace(Lengths(d->train), SamplerOptionsFor(*config, 0, dp));
    const auto t1 = std::chrono::steady_clock::now();
    absl::StatusOr<const data::EpochPlan*> plan = sampler->Plan(0);
    if (!plan.ok()) return Fail(plan.status());
    const double pack_s = Since(t1);
    const data::EpochPlan& p = **plan;
    const int64_t capacity = sampler->options().pack.capacity;
    std::printf("| packing | %s |\n", sampler->options().pack.sequential ? "sequential (next-fit)"
                                                                         : "first-fit-decreasing");
    std::printf("| bins (epoch 0) | %lld of %lld tokens, %lld per micro-batch |\n",
                (long long)p.packed_bins, (long long)capacity,
                (long long)sampler->options().bins_per_micro_batch);
    std::printf("| packing efficiency | %.4f (lower bound: %lld bins) |\n", p.efficiency,
                (long long)data::LowerBoundBins(Lengths(d->train), capacity));
    std::printf(
        "| micro-batches per rank (%lld ranks) | %lld (%lld bins split, %lld padding "
        "bins) |\n",
        (long long)dp, (long long)p.micro_batches_per_rank, (long long)p.split_bins,
        (long long)p.empty_bins);
    std::printf("| pack time | %.3f s |\n", pack_s);
  } else {
    std::printf("| packing | off (one row per sample, padded to a multiple of %lld) |\n",
                (long long)PadMultipleFor(*config));
  }
  const StepPlan steps =
      PlanSteps(*config, sampler.has_value() ? &*sampler : nullptr, d->train, dp);
  std::printf("| steps per epoch | %lld (%lld x %lld micro-batches per step) |\n",
              (long long)steps.steps_per_epoch, (long long)config->gradient_accumulation_steps,
              (long long)config->micro_batch_size);
  std::printf("| total steps | %lld (%s) |\n", (long long)steps.total_steps, steps.how.c_str());
  if (!config->dataset_prepared_path.empty()) {
    std::printf("\nprepared datasets in %s\n", config->dataset_prepared_path.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace loom

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Tokenizes and packs a config's datasets: --config=FILE.yaml");
  absl::ParseCommandLine(argc, argv);
  return loom::Main();
}
