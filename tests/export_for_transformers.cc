// Writes Loom models for tests/hf_interop_test.py to load in transformers:
// for each variant (untied, tied, sharded) a Hugging Face folder with our
// config.json and safetensors, plus loom_logits.safetensors holding fixed
// input ids and the logits Loom computes for them.
//
//   export_for_transformers OUT_DIR
#include <cstdio>
#include <string>

#include "model/pretrained.h"
#include "model/safetensors.h"
#include "runtime/autograd/grad_mode.h"

namespace loom {
namespace {

absl::Status Export(const std::string& dir, bool tied, uint64_t max_shard_bytes) {
  LlamaConfig c;
  c.vocab_size = 96;
  c.hidden_size = 48;
  c.intermediate_size = 80;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 6;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.rope_theta = 5e5;
  c.rms_norm_eps = 1e-5;
  c.initializer_range = 0.2;
  c.tie_word_embeddings = tied;
  LlamaForCausalLM model(c);
  model.InitWeights(tied ? 2 : 1);
  LOOM_RETURN_IF_ERROR(SavePretrainedLlama(model, dir, max_shard_bytes));
  std::vector<int64_t> ids(2 * 20);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int64_t((i * 37 + 11) % 96);
  const Tensor ids_BT = Tensor::FromVector(ids, {2, 20});
  NoGradGuard no_grad;
  const Tensor logits = model.Forward(ids_BT);
  return WriteSafetensors(dir + "/loom_logits.safetensors",
                          {{"input_ids", ids_BT}, {"logits", logits}}, {});
}

}  // namespace
}  // namespace loom

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  for (auto [name, tied, shard] :
       {std::tuple{"untied", false, uint64_t(0)}, std::tuple{"tied", true, uint64_t(0)},
        std::tuple{"sharded", false, uint64_t(40000)}}) {
    if (absl::Status s = loom::Export(out + "/" + name, tied, shard); !s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  return 0;
}
