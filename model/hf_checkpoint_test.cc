#include "model/hf_checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace loom {
namespace {

namespace fs = std::filesystem;

std::string Tmp(const std::string& name) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  fs::remove_all(dir);
  return dir;
}

std::vector<std::pair<std::string, Tensor>> SomeTensors() {
  std::vector<std::pair<std::string, Tensor>> t;
  for (int i = 0; i < 5; ++i) {
    std::vector<double> v(100);
    for (int j = 0; j < 100; ++j) v[size_t(j)] = i * 1000 + j;
    t.emplace_back("layer." + std::to_string(i) + ".weight",
                   Tensor::FromDoubles(v, {10, 10}, DType::kF32));  // 400 bytes each
  }
  return t;
}

void ExpectSame(const HfCheckpoint& ckpt, const std::vector<std::pair<std::string, Tensor>>& t) {
  ASSERT_EQ(ckpt.Names().size(), t.size());
  for (const auto& [name, want] : t) {
    absl::StatusOr<Tensor> got = ckpt.Read(name);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(std::memcmp(got->raw_data(), want.raw_data(), want.nbytes()), 0) << name;
  }
}

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(HfCheckpointTest, SingleFile) {
  const std::string dir = Tmp("single");
  ASSERT_TRUE(SaveHfCheckpoint(dir, SomeTensors()).ok());
  EXPECT_EQ(Files(dir), std::vector<std::string>{"model.safetensors"});
  absl::StatusOr<HfCheckpoint> ckpt = HfCheckpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->num_shards(), 1u);
  ExpectSame(*ckpt, SomeTensors());
  EXPECT_EQ(ckpt->Entry("layer.3.weight")->shape, Dims({10, 10}));
}

TEST(HfCheckpointTest, ShardsWithAnIndexLikeTransformers) {
  const std::string dir = Tmp("sharded");
  SaveOptions options;
  options.max_shard_bytes = 900;  // two 400-byte tensors per shard
  ASSERT_TRUE(SaveHfCheckpoint(dir, SomeTensors(), options).ok());
  EXPECT_EQ(Files(dir), (std::vector<std::string>{
                            "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                            "model-00003-of-00003.safetensors", "model.safetensors.index.json"}));
  std::ifstream in(dir + "/model.safetensors.index.json");
  const nlohmann::json index = nlohmann::json::parse(in);
  EXPECT_EQ(index["metadata"]["total_size"], 2000);
  EXPECT_EQ(index["weight_map"]["layer.2.weight"], "model-00002-of-00003.safetensors");
  absl::StatusOr<HfCheckpoint> ckpt = HfCheckpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->num_shards(), 3u);
  ExpectSame(*ckpt, SomeTensors());
}

TEST(HfCheckpointTest, RemovesTheOtherLayoutOnlyAfterSaving) {
  const std::string dir = Tmp("switch");
  SaveOptions sharded;
  sharded.max_shard_bytes = 900;
  ASSERT_TRUE(SaveHfCheckpoint(dir, SomeTensors(), sharded).ok());
  std::ofstream(dir + "/notes.txt") << "keep me";
  ASSERT_TRUE(SaveHfCheckpoint(dir, SomeTensors()).ok());
  EXPECT_EQ(Files(dir), (std::vector<std::string>{"model.safetensors", "notes.txt"}));
  sharded.max_shard_bytes = 1300;  // 2 shards now
  ASSERT_TRUE(SaveHfCheckpoint(dir, SomeTensors(), sharded).ok());
  EXPECT_EQ(Files(dir), (std::vector<std::string>{"model-00001-of-00002.safetensors",
                                                  "model-00002-of-00002.safetensors",
                                                  "model.safetensors.index.json", "notes.txt"}));
  ExpectSame(*HfCheckpoint::Open(dir), SomeTensors());
}

void ExpectOpenError(const std::string& dir, const std::string& needle) {
  absl::StatusOr<HfCheckpoint> ckpt = HfCheckpoint::Open(dir);
  ASSERT_FALSE(ckpt.ok()) << needle;
  EXPECT_NE(ckpt.status().message().find(needle), std::string::npos) << ckpt.status().message();
}

TEST(HfCheckpointTest, RejectsInconsistentIndexes) {
  ExpectOpenError(Tmp("none"), "no model.safetensors or model.safetensors.index.json");
  const std::string dir = Tmp("broken");
  SaveOptions sharded;
  sharded.max_shard_bytes = 900;
  ASSERT_TRUE(SaveHfCheckpoint(dir, SomeTensors(), sharded).ok());
  const std::string index_path = dir + "/model.safetensors.index.json";
  nlohmann::json index = nlohmann::json::parse(std::ifstream(index_path));
  auto write_index = [&](const nlohmann::json& j) { std::ofstream(index_path) << j.dump(); };

  nlohmann::json missing_file = index;
  missing_file["weight_map"]["layer.0.weight"] = "model-00009-of-00009.safetensors";
  missing_file["weight_map"]["layer.1.weight"] = "model-00009-of-00009.safetensors";
  write_index(missing_file);
  ExpectOpenError(dir, "model-00009-of-00009.safetensors: cannot open");

  nlohmann::json ghost = index;
  ghost["weight_map"]["ghost.weight"] = "model-00002-of-00003.safetensors";
  write_index(ghost);
  ExpectOpenError(dir,
                  "puts tensor 'ghost.weight' in model-00002-of-00003.safetensors, which "
                  "does not hold it");

  nlohmann::json wrong_shard = index;
  wrong_shard["weight_map"]["layer.0.weight"] = "model-00002-of-00003.safetensors";
  write_index(wrong_shard);
  ExpectOpenError(dir, "'layer.0.weight'");

  nlohmann::json unlisted = index;
  unlisted["weight_map"].erase("layer.3.weight");  // its shard also holds layer.2
  write_index(unlisted);
  ExpectOpenError(dir,
                  "holds tensor 'layer.3.weight', which model.safetensors.index.json does "
                  "not list");

  write_index(nlohmann::json::array());
  ExpectOpenError(dir, "expected a JSON object with a \"weight_map\"");
  nlohmann::json escape = index;
  escape["weight_map"]["layer.0.weight"] = "../model.safetensors";
  write_index(escape);
  ExpectOpenError(dir, "must be a file in the folder");
}

}  // namespace
}  // namespace loom
