#include "model/llama.h"

#include <cmath>
#include <cstring>

#include "gtest/gtest.h"
#include "model/pretrained.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/ops/loss.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

LlamaConfig TinyConfig(int64_t layers = 2, bool tied = false) {
  LlamaConfig c;
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.rms_norm_eps = 1e-5;
  c.initializer_range = 0.3;
  c.tie_word_embeddings = tied;
  return c;
}

Tensor Ids(const std::vector<int64_t>& v, int64_t b, int64_t t) {
  return Tensor::FromVector(v, {b, t});
}

bool BitEqual(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() &&
         std::memcmp(Contiguous(a).raw_data(), Contiguous(b).raw_data(), a.nbytes()) == 0;
}

TEST(LlamaTest, ParameterNamesAreHuggingFaces) {
  LlamaForCausalLM model(TinyConfig(1));
  std::vector<std::string> names;
  for (const auto& [name, p] : model.NamedParameters()) names.push_back(name);
  const std::vector<std::string> expected = {"model.embed_tokens.weight",
                                             "model.layers.0.self_attn.q_proj.weight",
                                             "model.layers.0.self_attn.k_proj.weight",
                                             "model.layers.0.self_attn.v_proj.weight",
                                             "model.layers.0.self_attn.o_proj.weight",
                                             "model.layers.0.mlp.gate_proj.weight",
                                             "model.layers.0.mlp.up_proj.weight",
                                             "model.layers.0.mlp.down_proj.weight",
                                             "model.layers.0.input_layernorm.weight",
                                             "model.layers.0.post_attention_layernorm.weight",
                                             "model.norm.weight",
                                             "lm_head.weight"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(model.NumParameters(), model.config().NumParameters());
  EXPECT_EQ(model.FindParameter("model.layers.0.self_attn.k_proj.weight").sizes(), Dims({8, 16}));
  LlamaForCausalLM tied(TinyConfig(1, /*tied=*/true));
  EXPECT_EQ(tied.NamedParameters().size(), expected.size() - 1);
  EXPECT_FALSE(tied.FindParameter("lm_head.weight").defined());
  EXPECT_EQ(tied.NumParameters(), tied.config().NumParameters());
}

TEST(LlamaTest, InitWeightsDependsOnSeedOnly) {
  LlamaForCausalLM a(TinyConfig()), b(TinyConfig()), c(TinyConfig());
  a.InitWeights(7);
  b.InitWeights(7);
  c.InitWeights(8);
  const NamedTensors pa = a.NamedParameters(), pb = b.NamedParameters(), pc = c.NamedParameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(BitEqual(pa[i].second, pb[i].second)) << pa[i].first;
    if (pa[i].first.find("norm") != std::string::npos) {
      for (double v : pa[i].second.ToDoubles()) ASSERT_EQ(v, 1.0);
    } else {
      EXPECT_FALSE(BitEqual(pa[i].second, pc[i].second)) << pa[i].first;
      const std::vector<double> v = pa[i].second.ToDoubles();
      double ss = 0;
      for (double x : v) ss += x * x;
      EXPECT_NEAR(std::sqrt(ss / double(v.size())), 0.3, 0.06) << pa[i].first;
    }
    EXPECT_TRUE(pa[i].second.requires_grad());
  }
}

// Two sequences packed in one row (positions restart at 0) give the logits
// each gets alone, by position ids and by cu_seqlens.
TEST(LlamaTest, PackedRowsMatchSeparateRows) {
  LlamaForCausalLM model(TinyConfig());
  model.InitWeights(3);
  NoGradGuard no_grad;
  const std::vector<int64_t> s1 = {1, 5, 9, 2, 7}, s2 = {3, 3, 8};
  Tensor alone1 = model.Forward(Ids(s1, 1, 5)), alone2 = model.Forward(Ids(s2, 1, 3));
  std::vector<int64_t> packed = s1, pos = {0, 1, 2, 3, 4, 0, 1, 2};
  packed.insert(packed.end(), s2.begin(), s2.end());
  LlamaInputs by_pos{.position_ids = Ids(pos, 1, 8)};
  LlamaInputs by_cu{.position_ids = Ids(pos, 1, 8),
                    .cu_seqlens = Tensor::FromVector<int32_t>({0, 5, 8}, {3})};
  for (const LlamaInputs& in : {by_pos, by_cu}) {
    Tensor logits = model.Forward(Ids(packed, 1, 8), in);
    const std::vector<double> got = logits.ToDoubles(), a = alone1.ToDoubles(),
                              b = alone2.ToDoubles();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(got[i], a[i], 1e-5);
    for (size_t i = 0; i < b.size(); ++i) EXPECT_NEAR(got[a.size() + i], b[i], 1e-5);
  }
}

// Every parameter gradient of the full model against central differences of
// the loss, in f64.
TEST(LlamaTest, GradientsMatchFiniteDifferences) {
  for (bool tied : {false, true}) {
    LlamaForCausalLM model(TinyConfig(2, tied), DType::kF64);
    model.InitWeights(11);
    const Tensor ids = Ids({1, 5, 9, 2, 7, 3, 0, 39, 4, 4}, 2, 5);
    const Tensor targets = Ids({5, 9, -100, 7, 3, -100, 39, 4, 4, 12}, 2, 5);
    auto loss_fn = [&] { return CrossEntropy(model.Forward(ids), targets); };
    loss_fn().Backward();
    for (const auto& [name, p] : model.NamedParameters()) {
      const std::vector<double> grad = p.grad().ToDoubles();
      double* data = p.data<double>();
      // A few elements per parameter keep the test fast.
      for (int64_t i = 0; i < p.numel(); i += std::max<int64_t>(1, p.numel() / 5)) {
        NoGradGuard no_grad;
        const double h = 1e-5, orig = data[i];
        data[i] = orig + h;
        const double up = loss_fn().item();
        data[i] = orig - h;
        const double down = loss_fn().item();
        data[i] = orig;
        EXPECT_NEAR(grad[size_t(i)], (up - down) / (2 * h), 1e-7) << name << "[" << i << "]";
      }
    }
  }
}

TEST(LlamaTest, GradientCheckpointingGivesIdenticalGradients) {
  LlamaForCausalLM plain(TinyConfig()), ckpt(TinyConfig());
  plain.InitWeights(5);
  ckpt.InitWeights(5);
  ckpt.model().set_gradient_checkpointing(true);
  const Tensor ids = Ids({1, 5, 9, 2, 7, 3, 0, 39}, 2, 4);
  CrossEntropy(plain.Forward(ids), ids).Backward();
  CrossEntropy(ckpt.Forward(ids), ids).Backward();
  const NamedTensors a = plain.NamedParameters(), b = ckpt.NamedParameters();
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(BitEqual(a[i].second.grad(), b[i].second.grad())) << a[i].first;
  }
}

TEST(LlamaTest, ForwardHooksRunAroundEachModule) {
  LlamaForCausalLM model(TinyConfig(2));
  model.InitWeights(1);
  std::vector<std::string> events;
  model.model().layer(1).AddPreForwardHook([&](Module&) { events.push_back("pre1"); });
  model.model().layer(1).AddPostForwardHook([&](Module&) { events.push_back("post1"); });
  model.model().layer(0).AddPostForwardHook([&](Module&) { events.push_back("post0"); });
  model.Forward(Ids({1, 2, 3}, 1, 3));
  EXPECT_EQ(events, (std::vector<std::string>{"post0", "pre1", "post1"}));
}

TEST(LlamaTest, LoadWeightsChecksEveryTensorBeforeChangingAny) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/ckpt";
  LlamaForCausalLM source(TinyConfig());
  source.InitWeights(1);
  ASSERT_TRUE(SavePretrainedLlama(source, dir).ok());

  LlamaForCausalLM target(TinyConfig());
  target.InitWeights(2);
  absl::StatusOr<HfCheckpoint> ckpt = HfCheckpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  std::vector<std::string> unused;
  ASSERT_TRUE(LoadWeights(*ckpt, target, &unused).ok());
  EXPECT_TRUE(unused.empty());
  const Tensor handle = target.FindParameter("model.norm.weight");
  EXPECT_TRUE(BitEqual(handle, source.FindParameter("model.norm.weight")));

  // A model with a bigger vocabulary: a shape mismatch, nothing changes.
  LlamaConfig bigger = TinyConfig();
  bigger.vocab_size = 41;
  LlamaForCausalLM other(bigger);
  other.InitWeights(9);
  const Tensor before = Clone(other.FindParameter("model.layers.0.mlp.up_proj.weight"));
  absl::Status s = LoadWeights(*ckpt, other);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("model.embed_tokens.weight"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("[40, 16]"), std::string::npos) << s.message();
  EXPECT_TRUE(BitEqual(before, other.FindParameter("model.layers.0.mlp.up_proj.weight")));

  // A deeper model: a missing tensor is named.
  LlamaForCausalLM deeper(TinyConfig(3));
  s = LoadWeights(*ckpt, deeper);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("model.layers.2."), std::string::npos) << s.message();
}

}  // namespace
}  // namespace loom
