#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/collators.h"
#include "model/pretrained.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/loss.h"
#include "runtime/optim/clip_grad.h"
#include "runtime/parallel.h"
#include "train/data_pipeline.h"
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

}  // namespace

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const TrainConfig& config,
                                                         DataParallel* dp) {
  std::unique_ptr<Trainer> t(new Trainer());
  t->config_ = config;
  if (dp != nullptr) {
    t->data_parallel_ = dp;
    t->dp_rank_ = dp->rank();
    t->dp_size_ = dp->size();
  }
  if (config.num_threads > 0) SetNumThreads(int(config.num_threads));

  // ---- Model.
  if (!config.base_model.empty()) {
    LOOM_ASSIGN_OR_RETURN(t->model_, LoadPretrainedLlama(config.base_model));
  } else {
    t->model_ = std::make_unique<LlamaForCausalLM>(*config.model);
    t->model_->InitWeights(config.seed);
  }
  t->model_->model().set_gradient_checkpointing(config.gradient_checkpointing);
  if (dp != nullptr) dp->BroadcastParameters(t->model_->Parameters());

  // ---- Data (train/data_pipeline.h).
  LOOM_ASSIGN_OR_RETURN(t->tokenizer_, MakeTokenizer(config, stderr));
  LOOM_ASSIGN_OR_RETURN(TrainingData d, LoadTrainingData(config, *t->tokenizer_,
                                                         t->model_->config().vocab_size, stderr));
  t->train_ = std::move(d.train);
  t->val_ = std::move(d.val);
  t->pad_multiple_ = PadMultipleFor(config);
  const int64_t mbs = config.micro_batch_size;
  if (config.sample_packing) {
    t->sampler_.emplace(Lengths(t->train_), SamplerOptionsFor(config, t->dp_rank_, t->dp_size_));
    LOOM_ASSIGN_OR_RETURN(const data::EpochPlan* plan, t->sampler_->Plan(0));
    std::fprintf(stderr, "packing: %s; repacked every epoch\n",
                 DescribePlan(*plan, t->sampler_->options()).c_str());
  }

  // ---- Steps and optimizer.
  t->micro_batches_per_epoch_ = (int64_t(t->train_.size()) + mbs - 1) / mbs;
  const StepPlan steps =
      PlanSteps(config, t->sampler_.has_value() ? &*t->sampler_ : nullptr, t->train_, t->dp_size_);
  t->steps_per_epoch_ = steps.steps_per_epoch;
  t->total_steps_ = steps.total_steps;
  if (config.sample_packing) {
    std::fprintf(stderr, "steps: %lld (%s)\n", (long long)steps.total_steps, steps.how.c_str());
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
  return EpochStepsFor(config_, sampler_.has_value() ? &*sampler_ : nullptr, int64_t(train_.size()),
                       epoch, dp_size_);
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
  // This rank's micro-batch m is the epoch's global micro-batch m * dp_size + dp_rank; in the
  // last round a rank may have none (its step then contributes nothing but still joins the sums).
  for (int64_t m = in_epoch * ga; m < (in_epoch + 1) * ga; ++m) {
    const int64_t g = m * dp_size_ + dp_rank_;
    if (g >= micro_batches_per_epoch_) break;
    std::vector<const data::Example*> rows;
    for (int64_t i = g * mbs; i < std::min((g + 1) * mbs, int64_t(train_.size())); ++i) {
      rows.push_back(&train_[size_t(order_[size_t(i)])]);
    }
    batches.push_back(data::Collate(rows, tokenizer_->pad_id(), pad_multiple_));
  }
  return batches;
}

StepStats Trainer::Step(const std::vector<data::Batch>& micro_batches) {
  const auto start = std::chrono::steady_clock::now();
  if (data_parallel_) data_parallel_->MaybeInjectFailure(step_);
  StepStats s;
  s.lr = schedule_.At(step_);
  optimizer_->set_lr(s.lr);
  for (const data::Batch& b : micro_batches) {
    s.trainable_tokens += b.num_trainable_tokens;
    s.tokens += b.num_tokens;
  }
  if (data_parallel_) data_parallel_->SumCounts(&s.trainable_tokens, &s.tokens);
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
  const std::vector<Tensor> params = model_->Parameters();
  if (data_parallel_) data_parallel_->SumGradients(params, &loss_sum);
  s.loss = loss_sum * inv_count;
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
  // Data-parallel replicas other than rank 0 write nothing and print nothing.
  const bool writes = data_parallel_ == nullptr || data_parallel_->is_output_rank();
  std::unique_ptr<FILE, int (*)(FILE*)> devnull(writes ? nullptr : std::fopen("/dev/null", "w"),
                                                [](FILE* f) { return f ? std::fclose(f) : 0; });
  if (!writes) log = devnull.get();
  MetricsLog metrics;
  if (writes) {
    std::error_code ec;
    std::filesystem::create_directories(config_.output_dir, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("output_dir ", config_.output_dir, ": cannot create: ", ec.message()));
    }
    LOOM_RETURN_IF_ERROR(metrics.Open(config_.output_dir + "/metrics.jsonl"));
  }

  const LlamaConfig& mc = model_->config();
  // What one micro-batch is: padded rows, or packed rows of samples.
  const std::string micro_batch =
      !sampler_.has_value()
          ? absl::StrFormat("%d rows", config_.micro_batch_size)
          : absl::StrFormat("%d packed row%s of %d tokens",
                            sampler_->options().bins_per_micro_batch,
                            sampler_->options().bins_per_micro_batch > 1 ? "s" : "",
                            sampler_->options().pack.capacity);
  std::fprintf(
      log,
      "model: %lld parameters (%lld layers, hidden %lld, heads %lld/%lld kv, vocab %lld%s)\n"
      "train: %zu rows, %zu eval rows; %lld steps (%lld per epoch) of %lld x %s; "
      "%d threads\n"
      "flops: per token = 6 * (matmul weights) + 6 * layers * heads * head_dim * "
      "(row length + 1)\n",
      (long long)model_->NumParameters(), (long long)mc.num_hidden_layers,
      (long long)mc.hidden_size, (long long)mc.num_attention_heads, (long long)mc.kv_heads(),
      (long long)mc.vocab_size, mc.tie_word_embeddings ? ", tied" : "", train_.size(), val_.size(),
      (long long)total_steps_, (long long)steps_per_epoch_,
      (long long)config_.gradient_accumulation_steps, micro_batch.c_str(), NumThreads());

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
  if (writes && !val_.empty()) {
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
    if (writes && config_.eval_steps > 0 && step_ % config_.eval_steps == 0 &&
        step_ < total_steps_ && !val_.empty()) {
      eval_line(RunEval(), "during");
    }
    if (writes && config_.save_steps > 0 && step_ % config_.save_steps == 0 &&
        step_ < total_steps_) {
      const std::string dir = absl::StrCat(config_.output_dir, "/checkpoint-", step_);
      LOOM_RETURN_IF_ERROR(Save(dir));
      bar.Print(absl::StrCat("saved ", dir));
    }
  }
  summary.seconds = Seconds(start);
  summary.steps = step_;
  if (writes && !val_.empty()) {
    summary.final_eval = RunEval();
    eval_line(*summary.final_eval, "end");
  }
  bar.Finish();
  if (!writes) return summary;
  LOOM_RETURN_IF_ERROR(Save(config_.output_dir));
  std::fprintf(log, "saved the model to %s (config.json + model.safetensors)\n",
               config_.output_dir.c_str());
  return summary;
}

}  // namespace loom
