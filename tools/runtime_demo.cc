// Trains a one-layer causal transformer on a synthetic sequence task with the
// Loom runtime alone (autograd, CPU kernels, AdamW): the main job until the
// Llama trainer lands.
//
// Task: token[t] = (token[t-1] + token[t-2]) mod V from two random seeds per
// row, so the model must attend two positions back. Chance-level loss is
// ln(V); a model that learned the rule gets close to 0 after the seeds.
//
//   bazel run //tools:runtime_demo -- --steps=300
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "runtime/ops/activation.h"
#include "runtime/ops/attention.h"
#include "runtime/ops/embedding.h"
#include "runtime/ops/loss.h"
#include "runtime/ops/matmul.h"
#include "runtime/ops/norm.h"
#include "runtime/ops/ops.h"
#include "runtime/ops/rope.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/clip_grad.h"
#include "runtime/parallel.h"
#include "runtime/philox.h"

ABSL_FLAG(int, steps, 300, "optimizer steps");
ABSL_FLAG(int, batch, 16, "sequences per step");
ABSL_FLAG(int, seq_len, 32, "tokens per sequence");
ABSL_FLAG(double, lr, 3e-3, "AdamW learning rate");
ABSL_FLAG(uint64_t, seed, 1234, "seed of weights and data");

namespace loom {
namespace {

constexpr int64_t kVocab = 17, kDim = 64, kHeads = 4, kKvHeads = 2, kHeadDim = kDim / kHeads,
                  kHidden = 128;

struct Model {
  Tensor embed, wq, wk, wv, wo, norm1, norm2, w_gate, w_up, w_down, norm_f, lm_head;
  std::vector<Tensor> Params() const {
    return {embed, wq, wk, wv, wo, norm1, norm2, w_gate, w_up, w_down, norm_f, lm_head};
  }
};

Tensor Param(DimsRef sizes, double stddev) {
  Tensor t = RandNormal(sizes, 0.0, stddev);
  t.set_requires_grad(true);
  return t;
}

Tensor Ones(int64_t n) {
  Tensor t = Tensor::Ones({n}, DType::kF32);
  t.set_requires_grad(true);
  return t;
}

Model Init() {
  const double s = 0.02;
  return {Param({kVocab, kDim}, s),
          Param({kDim, kDim}, s),
          Param({kKvHeads * kHeadDim, kDim}, s),
          Param({kKvHeads * kHeadDim, kDim}, s),
          Param({kDim, kDim}, s),
          Ones(kDim),
          Ones(kDim),
          Param({kHidden, kDim}, s),
          Param({kHidden, kDim}, s),
          Param({kDim, kHidden}, s),
          Ones(kDim),
          Param({kVocab, kDim}, s)};
}

// Logits [B, T, V] for ids [B, T].
Tensor Forward(const Model& m, const Tensor& ids, const Tensor& positions, const Tensor& inv_freq) {
  const int64_t b = ids.size(0), t = ids.size(1);
  Tensor x = Embedding(ids, m.embed);  // [B, T, D]
  Tensor h = RmsNorm(x, m.norm1, 1e-5);
  Tensor q = ApplyRope(Reshape(Linear(h, m.wq), {b, t, kHeads, kHeadDim}), positions, inv_freq);
  Tensor k = ApplyRope(Reshape(Linear(h, m.wk), {b, t, kKvHeads, kHeadDim}), positions, inv_freq);
  Tensor v = Reshape(Linear(h, m.wv), {b, t, kKvHeads, kHeadDim});
  Tensor attn = ScaledDotProductAttention(q, k, v);
  x = x + Linear(Reshape(attn, {b, t, kDim}), m.wo);
  h = RmsNorm(x, m.norm2, 1e-5);
  x = x + Linear(SwiGlu(Linear(h, m.w_gate), Linear(h, m.w_up)), m.w_down);
  return Linear(RmsNorm(x, m.norm_f, 1e-5), m.lm_head);
}

void MakeBatch(int64_t b, int64_t t, uint64_t seed, uint64_t step, Tensor* ids, Tensor* labels) {
  std::vector<int64_t> in(b * t), out(b * t);
  for (int64_t r = 0; r < b; ++r) {
    const philox::Block rnd = philox::Generate(seed, step * b + r);
    std::vector<int64_t> seq(t + 1);
    seq[0] = rnd.x[0] % kVocab;
    seq[1] = rnd.x[1] % kVocab;
    for (int64_t i = 2; i <= t; ++i) seq[i] = (seq[i - 1] + seq[i - 2]) % kVocab;
    for (int64_t i = 0; i < t; ++i) {
      in[r * t + i] = seq[i];
      // The first target follows a random seed token: not learnable, not trained.
      out[r * t + i] = i == 0 ? -100 : seq[i + 1];
    }
  }
  *ids = Tensor::FromVector(in, {b, t});
  *labels = Tensor::FromVector(out, {b, t});
}

int Main() {
  const int64_t b = absl::GetFlag(FLAGS_batch), t = absl::GetFlag(FLAGS_seq_len);
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  DefaultGenerator().SetSeed(seed);
  Model model = Init();
  AdamW opt(model.Params(),
            {.lr = absl::GetFlag(FLAGS_lr), .beta1 = 0.9, .beta2 = 0.95, .weight_decay = 0.0});
  Tensor inv_freq = RopeInvFreq(kHeadDim, 10000.0);
  std::vector<int64_t> pos(b * t);
  for (int64_t i = 0; i < b * t; ++i) pos[i] = i % t;
  const Tensor positions = Tensor::FromVector(pos, {b, t});

  std::printf(
      "runtime_demo: 1-layer transformer, %d threads, vocab %lld, dim %lld, "
      "batch %lld x %lld tokens; chance loss ln(%lld) = %.3f\n",
      NumThreads(), (long long)kVocab, (long long)kDim, (long long)b, (long long)t,
      (long long)kVocab, std::log(double(kVocab)));
  const auto start = std::chrono::steady_clock::now();
  double first = 0, last = 0;
  const int steps = absl::GetFlag(FLAGS_steps);
  for (int step = 1; step <= steps; ++step) {
    Tensor ids, labels;
    MakeBatch(b, t, seed, uint64_t(step), &ids, &labels);
    Tensor loss = CrossEntropy(Forward(model, ids, positions, inv_freq), labels);
    loss.Backward();
    const double norm = ClipGradNorm(model.Params(), 1.0);
    opt.Step();
    opt.ZeroGrad();
    last = loss.item();
    if (step == 1) first = last;
    if (step == 1 || step % 25 == 0 || step == steps) {
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("step %4d  loss %.4f  grad_norm %.3f  %.0f tokens/s\n", step, last, norm,
                  double(step * b * t) / secs);
    }
  }
  std::printf("loss %.4f -> %.4f (%s)\n", first, last,
              last < 0.5 * first ? "learned the rule" : "did not converge");
  return last < 0.5 * first ? 0 : 1;
}

}  // namespace
}  // namespace loom

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return loom::Main();
}
