// Times one full training step (forward, backward, grad clipping, AdamW) of a
// Llama preset on random tokens. tools/bench/train_step_vs_torch.py runs the
// same step in PyTorch eager and prints the ratio.
//
//   bazel run //tools:train_step_benchmark -- --preset=tiny
//   bazel run //tools:train_step_benchmark -- --preset=100m --batch=4 --seq=256 --json
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "model/llama.h"
#include "nlohmann/json.hpp"
#include "runtime/ops/loss.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/clip_grad.h"
#include "runtime/parallel.h"
#include "runtime/philox.h"

ABSL_FLAG(std::string, preset, "tiny", "tiny (examples/tiny) | 100m (124M-parameter Llama)");
ABSL_FLAG(int64_t, batch, 0, "rows per step (0: the preset's)");
ABSL_FLAG(int64_t, seq, 0, "tokens per row (0: the preset's)");
ABSL_FLAG(int, steps, 0, "timed steps (0: the preset's)");
ABSL_FLAG(int, warmup, 2, "untimed steps first");
ABSL_FLAG(int, threads, 0, "CPU threads (0: all cores)");
ABSL_FLAG(bool, json, false, "print one JSON object");

namespace loom {
namespace {

struct Preset {
  LlamaConfig config;
  int64_t batch, seq;
  int steps;
};

Preset GetPreset(const std::string& name) {
  LlamaConfig c;
  if (name == "100m") {
    c.vocab_size = 32000;
    c.hidden_size = 768;
    c.intermediate_size = 2048;
    c.num_hidden_layers = 12;
    c.num_attention_heads = 12;
    c.num_key_value_heads = 4;
    c.max_position_embeddings = 2048;
    return {c, 4, 256, 3};
  }
  LOOM_CHECK(name == "tiny", "unknown --preset '%s' (tiny | 100m)", name);
  c.vocab_size = 264;  // examples/tiny/train.yaml
  c.hidden_size = 128;
  c.intermediate_size = 352;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 128;
  c.rms_norm_eps = 1e-5;
  return {c, 32, 64, 20};
}

int Main() {
  if (absl::GetFlag(FLAGS_threads) > 0) SetNumThreads(absl::GetFlag(FLAGS_threads));
  Preset p = GetPreset(absl::GetFlag(FLAGS_preset));
  if (absl::GetFlag(FLAGS_batch) > 0) p.batch = absl::GetFlag(FLAGS_batch);
  if (absl::GetFlag(FLAGS_seq) > 0) p.seq = absl::GetFlag(FLAGS_seq);
  if (absl::GetFlag(FLAGS_steps) > 0) p.steps = absl::GetFlag(FLAGS_steps);

  LlamaForCausalLM model(p.config);
  model.InitWeights(1);
  AdamW opt(model.Parameters(), {.lr = 1e-4, .weight_decay = 0.01});
  std::vector<int64_t> ids(size_t(p.batch * p.seq));
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = int64_t(philox::Generate(7, i).x[0] % uint32_t(p.config.vocab_size));
  }
  const Tensor ids_BT = Tensor::FromVector(ids, {p.batch, p.seq});
  std::vector<int64_t> next(ids.size(), -100);
  for (int64_t r = 0; r < p.batch; ++r) {
    for (int64_t t = 0; t + 1 < p.seq; ++t) next[r * p.seq + t] = ids[r * p.seq + t + 1];
  }
  const Tensor targets = Tensor::FromVector(next, {p.batch, p.seq});

  std::vector<double> ms;
  for (int i = 0; i < absl::GetFlag(FLAGS_warmup) + p.steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    CrossEntropy(model.Forward(ids_BT), targets).Backward();
    ClipGradNorm(model.Parameters(), 1.0);
    opt.Step();
    opt.ZeroGrad();
    const double t =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (i >= absl::GetFlag(FLAGS_warmup)) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  const double tokens_per_s = double(p.batch * p.seq) / (median / 1e3);
  // Model FLOPs per token: 6 per matmul weight (the embedding lookup is not
  // a matmul) plus causal attention, 6 * layers * heads * head_dim * (T + 1).
  const LlamaConfig& c = p.config;
  const double matmul_weights =
      double(c.NumParameters() - (c.tie_word_embeddings ? 0 : c.vocab_size * c.hidden_size));
  const double flops_per_token =
      6 * matmul_weights +
      6.0 * double(c.num_hidden_layers * c.num_attention_heads * c.head_size()) * double(p.seq + 1);
  const double gflops = tokens_per_s * flops_per_token / 1e9;
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j = {{"preset", absl::GetFlag(FLAGS_preset)},
                        {"params", model.NumParameters()},
                        {"batch", p.batch},
                        {"seq", p.seq},
                        {"threads", NumThreads()},
                        {"steps", p.steps},
                        {"ms_per_step", median},
                        {"min_ms", ms.front()},
                        {"tokens_per_s", tokens_per_s},
                        {"gflops", gflops}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf(
        "%s: %lld parameters, batch %lld x %lld, %d threads: %.1f ms/step (median of "
        "%d, min %.1f), %.0f tokens/s, %.1f GFLOP/s (model FLOPs)\n",
        absl::GetFlag(FLAGS_preset).c_str(), (long long)model.NumParameters(), (long long)p.batch,
        (long long)p.seq, NumThreads(), median, p.steps, ms.front(), tokens_per_s, gflops);
  }
  return 0;
}

}  // namespace
}  // namespace loom

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return loom::Main();
}
