// Llama (Llama 2 / 3 architecture): token embedding, N decoder layers of
// grouped-query attention with rotary positions and a SwiGLU MLP, each behind
// an RMSNorm with a residual connection, a final RMSNorm and the LM head.
// Module and parameter names are Hugging Face's, so checkpoints map 1:1.
//
//   LlamaForCausalLM model(config, DType::kF32, Device::CPU());
//   model.InitWeights(/*seed=*/42);
//   Tensor logits_BTV = model.Forward(ids_BT, positions_BT);
//
// Shape legend: B batch rows, T tokens per row, D hidden size, H query heads,
// G key/value heads, E head size, F intermediate size, V vocabulary.
#ifndef LOOM_MODEL_LLAMA_H_
#define LOOM_MODEL_LLAMA_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "model/layers.h"
#include "model/llama_config.h"
#include "model/module.h"
#include "runtime/ops/attention.h"

namespace loom {

// What attention needs besides q, k, v: per-token positions (RoPE) and the
// sequence boundaries of packed rows.
struct LlamaInputs {
  Tensor position_ids;  // i64 [B, T]
  Tensor cu_seqlens;    // optional i32 [n+1] over B*T; else boundaries from position_ids
};

class LlamaAttention : public Module {
 public:
  LlamaAttention(const LlamaConfig& config, DType dtype, Device device);
  // x [B, T, D] -> [B, T, D].
  Tensor Forward(const Tensor& x_BTD, const LlamaInputs& in, const Tensor& inv_freq);

 private:
  int64_t heads_, kv_heads_, head_size_;
  nn::Linear *q_proj_, *k_proj_, *v_proj_, *o_proj_;
};

class LlamaMlp : public Module {
 public:
  LlamaMlp(const LlamaConfig& config, DType dtype, Device device);
  // down(silu(gate(x)) * up(x)).
  Tensor Forward(const Tensor& x_BTD);

 private:
  nn::Linear *gate_proj_, *up_proj_, *down_proj_;
};

class LlamaDecoderLayer : public Module {
 public:
  LlamaDecoderLayer(const LlamaConfig& config, DType dtype, Device device);
  // x + attn(norm(x)), then + mlp(norm(.)).
  Tensor Forward(const Tensor& x_BTD, const LlamaInputs& in, const Tensor& inv_freq);

 private:
  LlamaAttention* self_attn_;
  LlamaMlp* mlp_;
  nn::RmsNorm *input_layernorm_, *post_attention_layernorm_;
};

// The decoder stack ("model." in Hugging Face names).
class LlamaModel : public Module {
 public:
  LlamaModel(const LlamaConfig& config, DType dtype, Device device);
  // ids i64 [B, T] -> final hidden states [B, T, D].
  Tensor Forward(const Tensor& ids_BT, const LlamaInputs& in);
  nn::Embedding& embed_tokens() { return *embed_tokens_; }
  size_t num_layers() const { return layers_.size(); }
  LlamaDecoderLayer& layer(size_t i) { return *layers_[i]; }
  // Recompute each decoder layer in backward instead of keeping its
  // activations (Axolotl's gradient_checkpointing).
  void set_gradient_checkpointing(bool on) { checkpointing_ = on; }

 private:
  nn::Embedding* embed_tokens_;
  std::vector<LlamaDecoderLayer*> layers_;
  nn::RmsNorm* norm_;
  Tensor inv_freq_;  // RoPE frequencies, f32 [E/2]; not a parameter
  bool checkpointing_ = false;
};

class LlamaForCausalLM : public Module {
 public:
  LlamaForCausalLM(const LlamaConfig& config, DType dtype = DType::kF32,
                   Device device = Device::CPU());
  const LlamaConfig& config() const { return config_; }
  LlamaModel& model() { return *model_; }

  // Initializes as transformers' LlamaPreTrainedModel._init_weights: every
  // Linear and Embedding weight ~ N(0, initializer_range), norms = 1. Draws
  // from Philox keyed by `seed`, parameter by parameter in registration order, so the
  // weights depend on the seed alone.
  void InitWeights(uint64_t seed);

  // Logits [B, T, V] (in the parameter dtype) for ids i64 [B, T]. Position ids
  // default to 0..T-1 in every row.
  Tensor Forward(const Tensor& ids_BT, const LlamaInputs& in = {});

 private:
  LlamaConfig config_;
  LlamaModel* model_;
  // Untied: a Linear of its own. Tied: the embedding table is used as the LM
  // head and "lm_head.weight" is not a separate parameter (as transformers,
  // which leaves it out of saved checkpoints).
  nn::Linear* lm_head_ = nullptr;
};

// i64 [B, T] holding 0..T-1 in every row.
Tensor DefaultPositionIds(int64_t batch, int64_t tokens);

}  // namespace loom

#endif  // LOOM_MODEL_LLAMA_H_
