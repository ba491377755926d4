#include "model/llama.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/autograd/checkpoint.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/ops/activation.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/matmul.h"
#include "runtime/ops/random.h"
#include "runtime/ops/rope.h"
#include "runtime/ops/shape.h"

namespace loom {

Tensor DefaultPositionIds(int64_t batch, int64_t tokens) {
  std::vector<int64_t> pos(size_t(batch * tokens));
  for (int64_t i = 0; i < batch * tokens; ++i) pos[size_t(i)] = i % tokens;
  return Tensor::FromVector(pos, {batch, tokens});
}

// ---- Attention.

LlamaAttention::LlamaAttention(const LlamaConfig& c, DType dtype, Device device)
    : heads_(c.num_attention_heads), kv_heads_(c.kv_heads()), head_size_(c.head_size()) {
  const int64_t d = c.hidden_size;
  q_proj_ = &RegisterModule("q_proj",
                            std::make_unique<nn::Linear>(d, heads_ * head_size_, dtype, device));
  k_proj_ = &RegisterModule("k_proj",
                            std::make_unique<nn::Linear>(d, kv_heads_ * head_size_, dtype, device));
  v_proj_ = &RegisterModule("v_proj",
                            std::make_unique<nn::Linear>(d, kv_heads_ * head_size_, dtype, device));
  o_proj_ = &RegisterModule("o_proj",
                            std::make_unique<nn::Linear>(heads_ * head_size_, d, dtype, device));
}

Tensor LlamaAttention::Forward(const Tensor& x_BTD, const LlamaInputs& in, const Tensor& inv_freq) {
  ForwardScope scope(*this);
  const int64_t b = x_BTD.size(0), t = x_BTD.size(1);
  Tensor q_BTHE = Reshape(q_proj_->Forward(x_BTD), {b, t, heads_, head_size_});
  Tensor k_BTGE = Reshape(k_proj_->Forward(x_BTD), {b, t, kv_heads_, head_size_});
  Tensor v_BTGE = Reshape(v_proj_->Forward(x_BTD), {b, t, kv_heads_, head_size_});
  q_BTHE = ApplyRope(q_BTHE, in.position_ids, inv_freq);
  k_BTGE = ApplyRope(k_BTGE, in.position_ids, inv_freq);
  AttentionOptions options;
  if (in.cu_seqlens.defined()) {
    options.cu_seqlens_q = in.cu_seqlens;
  } else {
    options.position_ids = in.position_ids;
  }
  Tensor out_BTHE = ScaledDotProductAttention(q_BTHE, k_BTGE, v_BTGE, options);
  return o_proj_->Forward(Reshape(out_BTHE, {b, t, heads_ * head_size_}));
}

// ---- MLP.

LlamaMlp::LlamaMlp(const LlamaConfig& c, DType dtype, Device device) {
  const int64_t d = c.hidden_size, f = c.intermediate_size;
  gate_proj_ = &RegisterModule("gate_proj", std::make_unique<nn::Linear>(d, f, dtype, device));
  up_proj_ = &RegisterModule("up_proj", std::make_unique<nn::Linear>(d, f, dtype, device));
  down_proj_ = &RegisterModule("down_proj", std::make_unique<nn::Linear>(f, d, dtype, device));
}

Tensor LlamaMlp::Forward(const Tensor& x_BTD) {
  ForwardScope scope(*this);
  return down_proj_->Forward(SwiGlu(gate_proj_->Forward(x_BTD), up_proj_->Forward(x_BTD)));
}

// ---- Decoder layer.

LlamaDecoderLayer::LlamaDecoderLayer(const LlamaConfig& c, DType dtype, Device device) {
  self_attn_ = &RegisterModule("self_attn", std::make_unique<LlamaAttention>(c, dtype, device));
  mlp_ = &RegisterModule("mlp", std::make_unique<LlamaMlp>(c, dtype, device));
  input_layernorm_ =
      &RegisterModule("input_layernorm",
                      std::make_unique<nn::RmsNorm>(c.hidden_size, c.rms_norm_eps, dtype, device));
  post_attention_layernorm_ =
      &RegisterModule("post_attention_layernorm",
                      std::make_unique<nn::RmsNorm>(c.hidden_size, c.rms_norm_eps, dtype, device));
}

Tensor LlamaDecoderLayer::Forward(const Tensor& x_BTD, const LlamaInputs& in,
                                  const Tensor& inv_freq) {
  ForwardScope scope(*this);
  Tensor h_BTD = x_BTD + self_attn_->Forward(input_layernorm_->Forward(x_BTD), in, inv_freq);
  return h_BTD + mlp_->Forward(post_attention_layernorm_->Forward(h_BTD));
}

// ---- Decoder stack.

LlamaModel::LlamaModel(const LlamaConfig& c, DType dtype, Device device) {
  embed_tokens_ = &RegisterModule(
      "embed_tokens", std::make_unique<nn::Embedding>(c.vocab_size, c.hidden_size, dtype, device));
  // Registered as a child named "layers" whose children are "0", "1", ...
  struct Layers : Module {
    std::vector<LlamaDecoderLayer*> Build(const LlamaConfig& c, DType dtype, Device device) {
      std::vector<LlamaDecoderLayer*> out;
      for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
        out.push_back(&RegisterModule(absl::StrCat(i),
                                      std::make_unique<LlamaDecoderLayer>(c, dtype, device)));
      }
      return out;
    }
  };
  layers_ = RegisterModule("layers", std::make_unique<Layers>()).Build(c, dtype, device);
  norm_ = &RegisterModule(
      "norm", std::make_unique<nn::RmsNorm>(c.hidden_size, c.rms_norm_eps, dtype, device));
  inv_freq_ = RopeInvFreq(c.head_size(), c.rope_theta);
  if (device != inv_freq_.device()) {  // computed on the host; RoPE needs it beside q and k
    absl::StatusOr<Tensor> moved = inv_freq_.CopyTo(device);
    LOOM_CHECK_OK(moved.status());
    inv_freq_ = *moved;
  }
}

Tensor LlamaModel::Forward(const Tensor& ids_BT, const LlamaInputs& in) {
  ForwardScope scope(*this);
  Tensor x_BTD = embed_tokens_->Forward(ids_BT);
  for (LlamaDecoderLayer* layer : layers_) {
    if (checkpointing_ && GradMode::IsEnabled()) {
      x_BTD = autograd::Checkpoint(
          // By value: the closure runs again in backward, after Forward returned.
          [this, layer, in](const std::vector<Tensor>& xs) {
            return std::vector<Tensor>{layer->Forward(xs[0], in, inv_freq_)};
          },
          {x_BTD})[0];
    } else {
      x_BTD = layer->Forward(x_BTD, in, inv_freq_);
    }
  }
  return norm_->Forward(x_BTD);
}

// ---- Causal LM.

LlamaForCausalLM::LlamaForCausalLM(const LlamaConfig& c, DType dtype, Device device) : config_(c) {
  LOOM_CHECK_OK(c.Validate());
  model_ = &RegisterModule("model", std::make_unique<LlamaModel>(c, dtype, device));
  if (!c.tie_word_embeddings) {
    lm_head_ = &RegisterModule(
        "lm_head", std::make_unique<nn::Linear>(c.hidden_size, c.vocab_size, dtype, device));
  }
}

void LlamaForCausalLM::InitWeights(uint64_t seed) {
  NoGradGuard no_grad;
  Generator gen(seed);
  for (const auto& [name, p] : NamedParameters()) {
    const bool is_norm = name.find("norm") != std::string::npos;
    Tensor init = is_norm ? Tensor::Ones(p.sizes(), p.dtype(), p.device())
                          : RandNormal(p.sizes(), 0.0, config_.initializer_range, p.dtype(),
                                       p.device(), &gen);
    p.SetData(init);
  }
}

Tensor LlamaForCausalLM::Forward(const Tensor& ids_BT, const LlamaInputs& in) {
  ForwardScope scope(*this);
  LOOM_CHECK(ids_BT.dim() == 2 && ids_BT.dtype() == DType::kI64,
             "LlamaForCausalLM: ids must be i64 [B, T], got %s %s", DTypeName(ids_BT.dtype()),
             ids_BT.ShapeString());
  LlamaInputs inputs = in;
  if (!inputs.position_ids.defined()) {
    inputs.position_ids = DefaultPositionIds(ids_BT.size(0), ids_BT.size(1));
    if (ids_BT.device() != inputs.position_ids.device()) {
      absl::StatusOr<Tensor> moved = inputs.position_ids.CopyTo(ids_BT.device());
      LOOM_CHECK_OK(moved.status());
      inputs.position_ids = *moved;
    }
  }
  Tensor h_BTD = model_->Forward(ids_BT, inputs);
  if (lm_head_ != nullptr) return lm_head_->Forward(h_BTD);
  return loom::Linear(h_BTD, model_->embed_tokens().weight());
}

}  // namespace loom
