#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/bpe_tokenizer.h"
#include "data/collators.h"
#include "data/prepared_cache.h"
#include "model/pretrained.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/loss.h"
#include "runtime/optim/clip_grad.h"
#include "runtime/parallel.h"
#include "train/progress.h"

namespace loom {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

std::string Rate(double per_second) {
  if (per_second >= 1e6) return absl::StrFormat("%.2fM", per_second / 1e6);
  if (per_second >= 1e3) return absl::StrFormat("%.1fk", per_second / 1e3);
  return absl::StrFormat("%.0f", per_second);
}

// Hugging Face Trainer's rule: norm weights (and biases) take no weight decay.
std::vector<ParamGroup> DecayGroups(const Module& model, double weight_decay) {
  ParamGroup decay{.weight_decay = weight_decay}, no_decay{.weight_decay = 0.0};
  for (const auto& [name, p] : model.NamedParameters()) {
    const bool exempt =
        name.find("norm") != std::string::npos || name.find("bias") != std::string::npos;
    (exempt ? no_decay : decay).params.push_back(p);
  }
  return {decay, no_decay};
}

// base_model's tokenizer.json, else tokenizer_config, else bytes.
absl::StatusOr<std::unique_ptr<data::Tokenizer>> MakeTokenizer(const TrainConfig& config) {
  std::string source;
  if (!config.base_model.empty() && data::HasHfTokenizer(config.base_model)) {
    source = config.base_model;
  } else if (!config.tokenizer_config.empty()) {
    source = config.tokenizer_config;
  }
  if (source.empty()) {
    std::fprintf(stderr, "tokenizer: byte-level (256 bytes + BOS, EOS, PAD)\n");
    return std::make_unique<data::ByteTokenizer>();
  }
  LOOM_ASSIGN_OR_RETURN(std::unique_ptr<data::BpeTokenizer> tok, data::LoadBpeTokenizer(source));
  std::fprintf(stderr, "tokenizer: %s (byte-level BPE, %lld ids, BOS %d%s, EOS %d, PAD %d)\n",
               source.c_str(), (long long)tok->vocab_size(), tok->bos_id(),
               tok->adds_bos() ? " added" : " not added", tok->eos_id(), tok->pad_id());
  return std::unique_ptr<data::Tokenizer>(std::move(tok));
}

absl::StatusOr<std::vector<data::Example>> LoadOne(const TrainConfig& config,
                                                   const data::DatasetSpec& spec,
                                                   const data::Tokenizer& tokenizer,
                                                   const data::TokenizeOptions& options,
                                                   const char* what) {
  data::DatasetStats st;
  data::CacheOutcome outcome;
  std::string note;
  LOOM_ASSIGN_OR_RETURN(std::vector<data::Example> rows,
                        data::LoadDatasetCached(config.dataset_prepared_path, spec, tokenizer,
                                                options, &st, &outcome, &note));
  if (!note.empty()) std::fprintf(stderr, "%s: %s\n", what, note.c_str());
  std::fprintf(stderr,
               "%s: %s: %lld rows, %lld kept (%lld longer than sequence_len %lld %s, %lld shorter "
               "than %lld, %lld with nothing to train dropped), %lld tokens, %lld trainable; "
               "prepared cache %s\n",
               what, spec.path.c_str(), (long long)st.rows, (long long)st.kept,
               (long long)(st.dropped_too_long + st.truncated), (long long)config.sequence_len,
               st.truncated > 0 ? "truncated" : "dropped", (long long)st.dropped_too_short,
               (long long)config.min_sample_len, (long long)st.dropped_untrained,
               (long long)st.tokens, (long long)st.trainable_tokens,
               data::CacheOutcomeName(outcome));
  return rows;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const TrainConfig& config) {
  std::unique_ptr<Trainer> t(new Trainer());
  t->config_ = config;
  if (config.num_threads > 0) SetNumThreads(int(config.num_threads));
  LOOM_ASSIGN_OR_RETURN(t->tokenizer_, MakeTokenizer(config));

  // ---- Model.
  if (!config.base_model.empty()) {
    LOOM_ASSIGN_OR_RETURN(t->model_, LoadPretrainedLlama(config.base_model));
  } else {
    t->model_ = std::make_unique<LlamaForCausalLM>(*config.model);
    t->model_->InitWeights(config.seed);
  }
  t->model_->model().set_gradient_checkpointing(config.gradient_checkpointing);

  // ---- Data.
  const data::TokenizeOptions tokenize{.sequence_len = config.sequence_len,
                                       .train_on_inputs = config.train_on_inputs,
                                       .vocab_size = t->model_->config().vocab_size,
                                       .excess_length_strategy = config.excess_length_strategy,
                                       .min_sample_len = config.min_sample_len,
                                       .chat_template = config.chat_template};
  std::vector<data::Example> all;
  for (const data::DatasetSpec& spec : config.datasets) {
    LOOM_ASSIGN_OR_RETURN(std::vector<data::Example> rows,
                          LoadOne(config, spec, *t->tokenizer_, tokenize, "data"));
    all.insert(all.end(), std::make_move_iterator(rows.begin()),
               std::make_move_iterator(rows.end()));
  }
  LOOM_ASSIGN_OR_RETURN(data::TrainValSplit split,
                        data::ShuffleAndSplit(std::move(all), config.val_set_size, config.seed));
  t->train_ = std::move(split.train);
  t->val_ = std::move(split.val);
  for (const data::DatasetSpec& spec : config.test_datasets) {
    LOOM_ASSIGN_OR_RETURN(std::vector<data::Example> rows,
                          LoadOne(config, spec, *t->tokenizer_, tokenize, "eval data"));
    t->val_.insert(t->val_.end(), std::make_move_iterator(rows.begin()),
                   std::make_move_iterator(rows.end()));
  }
  if (t->train_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.config_path, ": no training rows left after filtering and the split"));
  }
  t->pad_multiple_ = data::PadMultiple(config.pad_to_sequence_len.value_or(config.sample_packing),
                                       config.pad_to_multiple_of, config.sequence_len);
  const int64_t mbs = config.micro_batch_size, ga = config.gradient_accumulation_steps;
  if (config.sample_packing) {
    std::vector<int32_t> lengths;
    lengths.reserve(t->train_.size());
    for (const data::Example& e : t->train_) lengths.push_back(int32_t(e.input_ids.size()));
    const bool real = config.multipack_real_batches;
    t->sampler_.emplace(
        std::move(lengths),
        data::SamplerOptions{
            .pack = {.capacity = real ? config.sequence_len : mbs * config.sequence_len,
                     .group_size = config.sample_packing_group_size,
                     .bin_size = config.sample_packing_bin_size,
                     .sequential = config.sample_packing_sequentially,
                     .seed = config.seed},
            .bins_per_micro_batch = real ? mbs : 1,
            .dp_rank = t->dp_rank_,
            .dp_size = t->dp_size_});
    LOOM_ASSIGN_OR_RETURN(const data::EpochPlan* plan, t->sampler_->Plan(0));
    const data::SamplerOptions& so = t->sampler_->options();
    std::fprintf(stderr,
                 "packing: %s, epoch 0: %lld bins of %lld tokens (%lld per micro-batch), "
                 "efficiency %.4f = %lld tokens / (bins * capacity); %lld micro-batches per rank "
                 "(%lld bins split, %lld padding bins to even out %lld ranks; no sample dropped); "
                 "repacked every epoch\n",
                 so.pack.sequential ? "sequential" : "first-fit-decreasing",
                 (long long)plan->packed_bins, (long long)so.pack.capacity,
                 (long long)so.bins_per_micro_batch, plan->efficiency, (long long)plan->bins.tokens,
                 (long long)plan->micro_batches_per_rank, (long long)plan->split_bins,
                 (long long)plan->empty_bins, (long long)so.dp_size);
  }
  // ---- Steps and optimizer.
  t->micro_batches_per_epoch_ = (int64_t(t->train_.size()) + mbs - 1) / mbs;
  t->steps_per_epoch_ = t->EpochSteps(0);
  if (config.max_steps > 0) {
    t->total_steps_ = config.max_steps;
  } else if (config.sample_packing && config.sample_packing_eff_est > 0) {
    int64_t tokens = 0;
    for (const data::Example& e : t->train_) tokens += int64_t(e.input_ids.size());
    t->total_steps_ =
        data::EstimatedTotalSteps(tokens, config.sample_packing_eff_est, config.sequence_len,
                                  mbs * ga * t->dp_size_, config.num_epochs);
    std::fprintf(stderr,
                 "steps: %lld from sample_packing_eff_est %.3f (Axolotl's estimate: (floor(0.99 * "
                 "%lld tokens / eff / %lld) // %lld - 1) * %g epochs)\n",
                 (long long)t->total_steps_, config.sample_packing_eff_est, (long long)tokens,
                 (long long)config.sequence_len, (long long)(mbs * ga * t->dp_size_),
                 config.num_epochs);
  } else {
    // Exact: the steps of every epoch's own packing (the last one fractional).
    const int64_t whole = int64_t(std::floor(config.num_epochs));
    int64_t total = 0;
    for (int64_t e = 0; e < whole; ++e) total += t->EpochSteps(e);
    const double frac = config.num_epochs - double(whole);
    if (frac > 0) total += int64_t(std::ceil(frac * double(t->EpochSteps(whole))));
    t->total_steps_ = std::max<int64_t>(1, total);
  }
  LOOM_ASSIGN_OR_RETURN(t->schedule_.kind, ParseLrSchedulerName(config.lr_scheduler));
  t->schedule_.lr = config.learning_rate;
  t->schedule_.total_steps = t->total_steps_;
  t->schedule_.warmup_steps =
      config.warmup_steps > 0 ? config.warmup_steps
                              : int64_t(std::ceil(config.warmup_ratio * double(t->total_steps_)));
  t->schedule_.min_lr_ratio = config.cosine_min_lr_ratio;
  t->optimizer_ = std::make_unique<AdamW>(DecayGroups(*t->model_, config.weight_decay),
                                          AdamWConfig{.lr = t->schedule_.At(0),
                                                      .beta1 = config.adam_beta1,
                                                      .beta2 = config.adam_beta2,
                                                      .eps = config.adam_epsilon,
                                                      .weight_decay = config.weight_decay});
  return t;
}

double Trainer::FlopsPerToken(int64_t tokens) const {
  const LlamaConfig& c = model_->config();
  // Every weight but the embedding lookup is a matmul: 2 FLOPs forward,
  // 4 backward. Causal attention: q.k and p.v over (tokens + 1) / 2 keys on
  // average, 2 FLOPs each per head dim, times 3 for backward.
  const double matmul_params =
      double(c.NumParameters() - (c.tie_word_embeddings ? 0 : c.vocab_size * c.hidden_size));
  const double attention = 6.0 *
                           double(c.num_hidden_layers * c.num_attention_heads * c.head_size()) *
                           double(tokens + 1);
  return 6.0 * matmul_params + attention;
}

int64_t Trainer::EpochSteps(int64_t epoch) {
  const int64_t ga = config_.gradient_accumulation_steps;
  if (!sampler_.has_value()) return (micro_batches_per_epoch_ + ga - 1) / ga;
  absl::StatusOr<const data::EpochPlan*> plan = sampler_->Plan(epoch);
  LOOM_CHECK_OK(plan.status());  // the options were checked on epoch 0
  return std::max<int64_t>(1, ((*plan)->micro_batches_per_rank + ga - 1) / ga);
}

std::pair<int64_t, int64_t> Trainer::EpochOf(int64_t step) {
  int64_t epoch = 0;
  for (;; ++epoch) {
    if (epoch == int64_t(epoch_steps_.size())) epoch_steps_.push_back(EpochSteps(epoch));
    if (step < epoch_steps_[size_t(epoch)]) return {epoch, step};
    step -= epoch_steps_[size_t(epoch)];
  }
}

std::vector<data::Batch> Trainer::StepBatches(int64_t step) {
  const auto [epoch, in_epoch] = EpochOf(step);
  const int64_t mbs = config_.micro_batch_size, ga = config_.gradient_accumulation_steps;
  std::vector<data::Batch> batches;
  if (sampler_.has_value()) {
    absl::StatusOr<const data::EpochPlan*> plan = sampler_->Plan(epoch);
    LOOM_CHECK_OK(plan.status());
    for (int64_t m = in_epoch * ga;
         m < std::min((in_epoch + 1) * ga, (*plan)->micro_batches_per_rank); ++m) {
      std::vector<std::vector<const data::Example*>> bins;
      for (absl::Span<const int64_t> bin : sampler_->MicroBatch(**plan, m)) {
        bins.emplace_back();
        for (int64_t s : bin) bins.back().push_back(&train_[size_t(s)]);
      }
      batches.push_back(data::CollatePacked(
          bins, {.pad_id = tokenizer_->pad_id(), .pad_to_multiple = pad_multiple_}));
    }
    return batches;
  }
  if (epoch != order_epoch_) {
    order_ = data::EpochOrder(int64_t(train_.size()), config_.seed, epoch);
    order_epoch_ = epoch;
  }
  for (int64_t m = in_epoch * ga; m < std::min((in_epoch + 1) * ga, micro_batches_per_epoch_);
       ++m) {
    std::vector<const data::Example*> rows;
    for (int64_t i = m * mbs; i < std::min((m + 1) * mbs, int64_t(train_.size())); ++i) {
      rows.push_back(&train_[size_t(order_[size_t(i)])]);
    }
    batches.push_back(data::Collate(rows, tokenizer_->pad_id(), pad_multiple_));
  }
  return batches;
}

StepStats Trainer::Step(const std::vector<data::Batch>& micro_batches) {
  const auto start = std::chrono::steady_clock::now();
  StepStats s;
  s.lr = schedule_.At(step_);
  optimizer_->set_lr(s.lr);
  for (const data::Batch& b : micro_batches) {
    s.trainable_tokens += b.num_trainable_tokens;
    s.tokens += b.num_tokens;
  }
  // Sum of per-token losses over the step, divided by the step's trainable
  // tokens: each micro-batch's backward is scaled by the same global count.
  const double inv_count = s.trainable_tokens > 0 ? 1.0 / double(s.trainable_tokens) : 0.0;
  double loss_sum = 0;
  for (const data::Batch& b : micro_batches) {
    if (b.num_trainable_tokens == 0) continue;
    Tensor logits =
        model_->Forward(b.input_ids, {.position_ids = b.position_ids, .cu_seqlens = b.cu_seqlens});
    Tensor sum = CrossEntropy(logits, b.targets, Reduction::kSum);
    loss_sum += sum.item();
    MulScalar(sum, inv_count).Backward();
  }
  s.loss = loss_sum * inv_count;
  const std::vector<Tensor> params = model_->Parameters();
  s.grad_norm = config_.max_grad_norm > 0 ? ClipGradNorm(params, config_.max_grad_norm)
                                          : GlobalGradNorm(params);
  if (std::isfinite(s.grad_norm)) {
    optimizer_->Step();
  } else {
    s.skipped = true;
  }
  optimizer_->ZeroGrad();
  ++step_;
  s.seconds = Seconds(start);
  return s;
}

EvalResult Trainer::RunEval() {
  return Evaluate(*model_, *tokenizer_, val_,
                  {.batch_size = std::max<int64_t>(config_.micro_batch_size, 16)});
}

absl::Status Trainer::Save(const std::string& dir) { return SavePretrainedLlama(*model_, dir); }

absl::StatusOr<TrainSummary> Trainer::Run(FILE* log) {
  TrainSummary summary;
  summary.output_dir = config_.output_dir;
  std::error_code ec;
  std::filesystem::create_directories(config_.output_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("output_dir ", config_.output_dir, ": cannot create: ", ec.message()));
  }
  MetricsLog metrics;
  LOOM_RETURN_IF_ERROR(metrics.Open(config_.output_dir + "/metrics.jsonl"));

  const LlamaConfig& mc = model_->config();
  std::fprintf(
      log,
      "model: %lld parameters (%lld layers, hidden %lld, heads %lld/%lld kv, vocab %lld%s)\n"
      "train: %zu rows, %zu eval rows; %lld steps (%lld per epoch) of %lld x %lld rows; "
      "%d threads\n"
      "flops: per token = 6 * (matmul weights) + 6 * layers * heads * head_dim * "
      "(row length + 1)\n",
      (long long)model_->NumParameters(), (long long)mc.num_hidden_layers,
      (long long)mc.hidden_size, (long long)mc.num_attention_heads, (long long)mc.kv_heads(),
      (long long)mc.vocab_size, mc.tie_word_embeddings ? ", tied" : "", train_.size(), val_.size(),
      (long long)total_steps_, (long long)steps_per_epoch_,
      (long long)config_.gradient_accumulation_steps, (long long)config_.micro_batch_size,
      NumThreads());

  ProgressBar bar(total_steps_, log);
  auto eval_line = [&](const EvalResult& r, const char* when) {
    std::string line = absl::StrFormat("eval (%s, step %d): loss %.4f, perplexity %.3f", when,
                                       step_, r.loss, r.perplexity);
    if (r.prompt_rows > 0) {
      absl::StrAppendFormat(&line, ", exact match %d/%d = %.1f%%", r.exact_matches, r.prompt_rows,
                            100.0 * r.accuracy);
    }
    bar.Print(line);
    nlohmann::json j = {{"step", step_},
                        {"eval_loss", r.loss},
                        {"eval_perplexity", r.perplexity},
                        {"eval_tokens", r.tokens}};
    if (r.prompt_rows > 0) j["eval_accuracy"] = r.accuracy;
    metrics.Write(j);
  };
  if (!val_.empty()) {
    summary.initial_eval = RunEval();
    eval_line(*summary.initial_eval, "start");
  }

  const auto start = std::chrono::steady_clock::now();
  double window_tokens = 0, window_seconds = 0, window_loss = 0;
  int64_t window_steps = 0;
  while (step_ < total_steps_) {
    const std::vector<data::Batch> batches = StepBatches(step_);
    const int64_t row_len = batches.empty() ? 0 : batches[0].input_ids.size(1);
    const StepStats s = Step(batches);
    if (step_ == 1) summary.first_loss = s.loss;
    summary.last_loss = s.loss;
    summary.tokens += s.tokens;
    window_tokens += double(s.tokens);
    window_seconds += s.seconds;
    window_loss += s.loss;
    ++window_steps;
    if (s.skipped) {
      bar.Print(absl::StrFormat("step %d: non-finite gradient norm; update skipped", step_));
    }
    const double tokens_per_s = double(s.tokens) / std::max(s.seconds, 1e-9);
    metrics.Write({{"step", step_},
                   {"epoch", double(step_) / double(steps_per_epoch_)},
                   {"loss", s.loss},
                   {"lr", s.lr},
                   {"grad_norm", s.grad_norm},
                   {"tokens", s.tokens},
                   {"trainable_tokens", s.trainable_tokens},
                   {"tokens_per_s", tokens_per_s},
                   {"tflops", tokens_per_s * FlopsPerToken(row_len) / 1e12},
                   {"seconds", s.seconds}});
    if (step_ % std::max<int64_t>(1, config_.logging_steps) == 0 || step_ == total_steps_) {
      bar.Update(step_, absl::StrFormat("loss %.4f | lr %.2e | grad %.3f | %s tok/s",
                                        window_loss / double(window_steps), s.lr, s.grad_norm,
                                        Rate(window_tokens / std::max(window_seconds, 1e-9))));
      window_tokens = window_seconds = window_loss = 0;
      window_steps = 0;
    }
    if (config_.eval_steps > 0 && step_ % config_.eval_steps == 0 && step_ < total_steps_ &&
        !val_.empty()) {
      eval_line(RunEval(), "during");
    }
    if (config_.save_steps > 0 && step_ % config_.save_steps == 0 && step_ < total_steps_) {
      const std::string dir = absl::StrCat(config_.output_dir, "/checkpoint-", step_);
      LOOM_RETURN_IF_ERROR(Save(dir));
      bar.Print(absl::StrCat("saved ", dir));
    }
  }
  summary.seconds = Seconds(start);
  summary.steps = step_;
  if (!val_.empty()) {
    summary.final_eval = RunEval();
    eval_line(*summary.final_eval, "end");
  }
  bar.Finish();
  LOOM_RETURN_IF_ERROR(Save(config_.output_dir));
  std::fprintf(log, "saved the model to %s (config.json + model.safetensors)\n",
               config_.output_dir.c_str());
  return summary;
}

}  // namespace loom
