// Hugging Face model folders in and out: `config.json` plus safetensors
// (single file or sharded), with Hugging Face tensor names, so a Hugging Face
// Llama checkpoint loads here and what we save loads in transformers.
//
//   LOOM_ASSIGN_OR_RETURN(std::unique_ptr<LlamaForCausalLM> model,
//                         LoadPretrainedLlama("/models/tiny-llama"));
//   LOOM_RETURN_IF_ERROR(SavePretrainedLlama(*model, "/out/final"));
#ifndef LOOM_MODEL_PRETRAINED_H_
#define LOOM_MODEL_PRETRAINED_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/hf_checkpoint.h"
#include "model/llama.h"

namespace loom {

// Copies every parameter of `model` from `ckpt` (values converted to the
// parameter's dtype; storage swapped with SetData, so handles stay valid).
// A missing tensor or a shape mismatch is an error naming the tensor, the
// shapes and the folder; nothing is changed unless every tensor is present
// and matches. Tensors the model does not use are returned in `unused`
// (RoPE buffers of old checkpoints, a tied lm_head), not an error.
absl::Status LoadWeights(const HfCheckpoint& ckpt, Module& model,
                         std::vector<std::string>* unused = nullptr);

// config.json + weights from a Hugging Face folder, in `dtype` (default: f32).
absl::StatusOr<std::unique_ptr<LlamaForCausalLM>> LoadPretrainedLlama(const std::string& dir,
                                                                      DType dtype = DType::kF32);

// Writes config.json and the weights (sharded above `max_shard_bytes`; 0 =
// one file) into `dir`, with the checkpoint format's atomic-rename rules.
absl::Status SavePretrainedLlama(const LlamaForCausalLM& model, const std::string& dir,
                                 uint64_t max_shard_bytes = 0);

}  // namespace loom

#endif  // LOOM_MODEL_PRETRAINED_H_
