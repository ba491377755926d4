#include "model/hf_checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace loom {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";

std::string ShardName(size_t k, size_t n) {
  return absl::StrFormat("model-%05d-of-%05d.safetensors", k, n);
}

// Shards written by an earlier save ("model-0000K-of-0000N.safetensors").
bool IsShardName(const std::string& name) {
  return name.size() == std::string("model-00001-of-00001.safetensors").size() &&
         name.rfind("model-", 0) == 0 && name.find("-of-") == 11 &&
         name.substr(name.size() - 12) == ".safetensors";
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::InternalError(absl::StrCat(path, ": cannot write"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": cannot move ", tmp, " into place"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HfCheckpoint> HfCheckpoint::Open(const std::string& dir) {
  HfCheckpoint ckpt;
  const std::string index_path = dir + "/" + kIndexFile;
  if (!fs::exists(index_path)) {
    const std::string single = dir + "/" + kSingleFile;
    if (!fs::exists(single)) {
      return absl::NotFoundError(absl::StrCat(dir, ": no ", kSingleFile, " or ", kIndexFile));
    }
    LOOM_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::Open(single));
    for (const auto& [name, e] : f.tensors()) ckpt.file_of_[name] = 0;
    ckpt.files_.push_back(std::move(f));
    return ckpt;
  }

  std::ifstream in(index_path);
  json index = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") ||
      !index["weight_map"].is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path, ": expected a JSON object with a \"weight_map\" object"));
  }
  std::map<std::string, std::vector<std::string>> listed;  // shard -> tensors
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": weight_map['", name,
                                                     "'] must be a file name, got ", shard.dump()));
    }
    const std::string file = shard.get<std::string>();
    if (file.find('/') != std::string::npos || file == "." || file == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": shard '", file, "' must be a file in the folder"));
    }
    listed[file].push_back(name);
  }
  for (const auto& [file, names] : listed) {
    LOOM_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::Open(dir + "/" + file));
    std::set<std::string> in_index(names.begin(), names.end());
    for (const std::string& name : names) {
      if (!f.Contains(name)) {
        return absl::NotFoundError(absl::StrCat(index_path, " puts tensor '", name, "' in ", file,
                                                ", which does not hold it"));
      }
      ckpt.file_of_[name] = ckpt.files_.size();
    }
    for (const auto& [name, e] : f.tensors()) {
      if (!in_index.count(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat(dir, "/", file, " holds tensor '", name, "', which ", kIndexFile,
                         " does not list (or lists in another shard)"));
      }
    }
    ckpt.files_.push_back(std::move(f));
  }
  return ckpt;
}

std::vector<std::string> HfCheckpoint::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, i] : file_of_) names.push_back(name);
  return names;
}

bool HfCheckpoint::Contains(const std::string& name) const { return file_of_.count(name) > 0; }

absl::StatusOr<SafetensorsEntry> HfCheckpoint::Entry(const std::string& name) const {
  auto it = file_of_.find(name);
  if (it == file_of_.end()) return absl::NotFoundError(absl::StrCat("no tensor '", name, "'"));
  return files_[it->second].tensors().at(name);
}

absl::StatusOr<Tensor> HfCheckpoint::Read(const std::string& name) const {
  auto it = file_of_.find(name);
  if (it == file_of_.end()) return absl::NotFoundError(absl::StrCat("no tensor '", name, "'"));
  return files_[it->second].Read(name);
}

absl::Status SaveHfCheckpoint(const std::string& dir,
                              const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const SaveOptions& options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat(dir, ": cannot create folder: ", ec.message()));

  // Greedy shards in the given order (as transformers' shard_checkpoint).
  std::vector<std::vector<size_t>> shards(1);
  uint64_t shard_bytes = 0, total_bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t n = tensors[i].second.nbytes();
    if (options.max_shard_bytes > 0 && !shards.back().empty() &&
        shard_bytes + n > options.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += n;
    total_bytes += n;
  }

  std::set<std::string> written;
  if (shards.size() == 1) {
    LOOM_RETURN_IF_ERROR(WriteSafetensors(dir + "/" + kSingleFile, tensors, options.metadata));
    written.insert(kSingleFile);
  } else {
    json weight_map = json::object();
    for (size_t k = 0; k < shards.size(); ++k) {
      const std::string file = ShardName(k + 1, shards.size());
      std::vector<std::pair<std::string, Tensor>> part;
      for (size_t i : shards[k]) {
        part.push_back(tensors[i]);
        weight_map[tensors[i].first] = file;
      }
      LOOM_RETURN_IF_ERROR(WriteSafetensors(dir + "/" + file, part, options.metadata));
      written.insert(file);
    }
    json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}};
    LOOM_RETURN_IF_ERROR(WriteText(dir + "/" + kIndexFile, index.dump(2) + "\n"));
    written.insert(kIndexFile);
  }

  // Only now that the new checkpoint is complete, remove what an earlier
  // save of the other layout (or another shard count) left behind.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool ours = name == kSingleFile || name == kIndexFile || IsShardName(name);
    if (ours && !written.count(name)) fs::remove(entry.path(), ec);
  }
  return absl::OkStatus();
}

}  // namespace loom
