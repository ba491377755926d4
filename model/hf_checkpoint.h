// Hugging Face checkpoint folders: `model.safetensors`, or shards listed by
// `model.safetensors.index.json` ({"metadata": {"total_size": N},
// "weight_map": {"tensor name": "model-00001-of-00002.safetensors", ...}}).
//
//   LOOM_ASSIGN_OR_RETURN(HfCheckpoint ckpt, HfCheckpoint::Open("/models/llama"));
//   LOOM_ASSIGN_OR_RETURN(Tensor w, ckpt.Read("lm_head.weight"));
//   LOOM_RETURN_IF_ERROR(SaveHfCheckpoint("/out", named_tensors, {.max_shard_bytes = 5 << 30}));
#ifndef LOOM_MODEL_HF_CHECKPOINT_H_
#define LOOM_MODEL_HF_CHECKPOINT_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "model/safetensors.h"
#include "runtime/tensor.h"

namespace loom {

class HfCheckpoint {
 public:
  // Opens `dir`/model.safetensors.index.json if present (every shard it names
  // must exist and hold exactly the tensors the index assigns to it), else
  // `dir`/model.safetensors. Errors name the folder and the missing or
  // inconsistent file or tensor.
  static absl::StatusOr<HfCheckpoint> Open(const std::string& dir);

  // Every tensor name, sorted, with its header entry.
  std::vector<std::string> Names() const;
  bool Contains(const std::string& name) const;
  absl::StatusOr<SafetensorsEntry> Entry(const std::string& name) const;
  absl::StatusOr<Tensor> Read(const std::string& name) const;
  // Files opened (1 when unsharded).
  size_t num_shards() const { return files_.size(); }

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> file_of_;  // tensor name -> index in files_
};

struct SaveOptions {
  // A shard holds tensors (in the given order) up to this many bytes; a
  // tensor larger than the limit gets a shard of its own. 0 = one file.
  uint64_t max_shard_bytes = 0;
  std::map<std::string, std::string> metadata = {{"format", "pt"}};
};

// Writes `tensors` into `dir` (created if missing) as `model.safetensors`,
// or as `model-0000K-of-0000N.safetensors` plus `model.safetensors.index.json`
// when they exceed one shard. Each file is written to a temporary name and
// renamed, and stale files of the other layout (a previous sharded save, or a
// single file) are removed only after the new files are in place.
absl::Status SaveHfCheckpoint(const std::string& dir,
                              const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const SaveOptions& options = {});

}  // namespace loom

#endif  // LOOM_MODEL_HF_CHECKPOINT_H_
