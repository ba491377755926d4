#include "model/pretrained.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/ops/shape.h"

namespace loom {

absl::Status LoadWeights(const HfCheckpoint& ckpt, Module& model,
                         std::vector<std::string>* unused) {
  const NamedTensors params = model.NamedParameters();
  // Read and check everything first, so a bad checkpoint changes nothing.
  std::vector<Tensor> values;
  values.reserve(params.size());
  for (const auto& [name, p] : params) {
    if (!ckpt.Contains(name)) {
      return absl::NotFoundError(
          absl::StrCat("checkpoint has no tensor '", name, "' (the model has ", params.size(),
                       " parameters; the checkpoint ", ckpt.Names().size(), " tensors)"));
    }
    LOOM_ASSIGN_OR_RETURN(Tensor value, ckpt.Read(name));
    if (value.sizes() != p.sizes()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' has shape ", value.ShapeString(),
                       " in the checkpoint; the model expects ", p.ShapeString()));
    }
    values.push_back(value);
  }
  NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i].second;
    Tensor v = values[i].dtype() == p.dtype() ? values[i] : Cast(values[i], p.dtype());
    if (v.device() != p.device()) {
      LOOM_ASSIGN_OR_RETURN(v, v.CopyTo(p.device()));
    }
    p.SetData(v);
  }
  if (unused != nullptr) {
    unused->clear();
    for (const std::string& name : ckpt.Names()) {
      if (!model.FindParameter(name).defined()) unused->push_back(name);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LlamaForCausalLM>> LoadPretrainedLlama(const std::string& dir,
                                                                      DType dtype) {
  LOOM_ASSIGN_OR_RETURN(LlamaConfig config, LoadLlamaConfig(dir + "/config.json"));
  LOOM_ASSIGN_OR_RETURN(HfCheckpoint ckpt, HfCheckpoint::Open(dir));
  auto model = std::make_unique<LlamaForCausalLM>(config, dtype);
  if (absl::Status s = LoadWeights(ckpt, *model); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(dir, ": ", s.message()));
  }
  return model;
}

absl::Status SavePretrainedLlama(const LlamaForCausalLM& model, const std::string& dir,
                                 uint64_t max_shard_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot create folder: ", ec.message()));
  NamedTensors tensors;
  for (const auto& [name, p] : model.NamedParameters()) tensors.emplace_back(name, p.Detach());
  SaveOptions options;
  options.max_shard_bytes = max_shard_bytes;
  LOOM_RETURN_IF_ERROR(SaveHfCheckpoint(dir, tensors, options));
  LlamaConfig config = model.config();
  config.torch_dtype = tensors.empty()                             ? "float32"
                       : tensors[0].second.dtype() == DType::kBF16 ? "bfloat16"
                       : tensors[0].second.dtype() == DType::kF16  ? "float16"
                                                                   : "float32";
  return SaveLlamaConfig(config, dir + "/config.json");
}

}  // namespace loom
