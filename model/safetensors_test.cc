#include "model/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

std::string Tmp(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A file image with `header` as its JSON and `data_bytes` zero bytes after it.
std::string Image(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((header.size() >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, '\0');
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.sizes() == b.sizes() && a.nbytes() == b.nbytes() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

TEST(SafetensorsTest, RoundTripsEveryDtypeAndShape) {
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"f32", Tensor::FromDoubles({1.5, -2, 3.25, 1e-30, 7, 8}, {2, 3}, DType::kF32)},
      {"f64", Tensor::FromDoubles({1.0 / 3, -1e300}, {2}, DType::kF64)},
      {"bf16", Tensor::FromDoubles({1, 2, 3, 4}, {2, 1, 2}, DType::kBF16)},
      {"f16", Tensor::FromDoubles({0.5, -65504}, {2}, DType::kF16)},
      {"i32", Tensor::FromVector<int32_t>({-1, 2147483647}, {2})},
      {"i64", Tensor::FromVector<int64_t>({int64_t(1) << 40}, {1})},
      {"bool", Tensor::FromVector<bool>({true, false, true}, {3})},
      {"scalar", Tensor::Scalar(42.0)},
      {"empty", Tensor::Empty({0, 4}, DType::kF32)},
      {"strided", Transpose(Tensor::FromDoubles({1, 2, 3, 4, 5, 6}, {2, 3}, DType::kF32), 0, 1)},
  };
  const std::string path = Tmp("all.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}, {"note", "x"}}).ok());
  const std::string bytes = ReadFile(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u) << "data must start 8-byte aligned";

  absl::StatusOr<SafetensorsFile> f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->metadata().at("note"), "x");
  EXPECT_EQ(f->tensors().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    absl::StatusOr<Tensor> back = f->Read(name);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_TRUE(SameBytes(*back, Contiguous(t))) << name;
  }
  EXPECT_EQ(f->tensors().at("scalar").shape.size(), 0u);
  // The in-memory parser sees the same file.
  absl::StatusOr<SafetensorsFile> parsed = SafetensorsFile::Parse(bytes, "mem");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(SameBytes(*parsed->Read("bf16"), tensors[2].second));
  EXPECT_FALSE(f->Read("missing").ok());
}

// The header format is Python safetensors': keys, dtype names, shapes and
// offsets exactly as its reader expects (checked with it by
// //tests:hf_interop_test); here we check the JSON literally.
TEST(SafetensorsTest, WritesTheReferenceHeaderLayout) {
  const std::string path = Tmp("one.safetensors");
  ASSERT_TRUE(
      WriteSafetensors(path, {{"w", Tensor::FromDoubles({1, 2}, {1, 2}, DType::kF32)}}, {}).ok());
  const std::string bytes = ReadFile(path);
  const std::string json = R"({"w":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}})";
  EXPECT_EQ(bytes.substr(8, json.size()), json);
  EXPECT_EQ(bytes.size(), 8 + 56 + 8u);  // 56 bytes of JSON: no padding needed
  const std::string path2 = Tmp("two.safetensors");
  ASSERT_TRUE(
      WriteSafetensors(path2, {{"ww", Tensor::FromDoubles({1, 2}, {1, 2}, DType::kF32)}}, {}).ok());
  const std::string bytes2 = ReadFile(path2);
  EXPECT_EQ(bytes2.substr(8 + 57, 7), std::string(7, ' '));  // 57 -> 64 with spaces
  EXPECT_EQ(bytes2.size(), 8 + 64 + 8u);
}

void ExpectRejected(const std::string& image, const std::string& needle) {
  absl::StatusOr<SafetensorsFile> f = SafetensorsFile::Parse(image, "bad.safetensors");
  ASSERT_FALSE(f.ok()) << needle;
  EXPECT_NE(f.status().message().find(needle), std::string::npos) << f.status().message();
  EXPECT_NE(f.status().message().find("bad.safetensors"), std::string::npos);
}

TEST(SafetensorsTest, RejectsMalformedFilesNamingTheProblem) {
  ExpectRejected("abc", "shorter than the 8-byte header length");
  ExpectRejected(Image("{}", 0).substr(0, 9), "header length 2 exceeds");
  std::string huge = Image("{}", 0);
  huge[7] = 0x7f;
  ExpectRejected(huge, "exceeds");
  ExpectRejected(Image("{not json", 0), "not valid JSON");
  ExpectRejected(Image("[1, 2]", 0), "not a JSON object");
  ExpectRejected(Image(R"({"a": {"dtype": "F32", "shape": [2]}})", 8),
                 "tensor 'a' has no 'data_offsets'");
  ExpectRejected(Image(R"({"a": {"dtype": 5, "shape": [2], "data_offsets": [0, 8]}})", 8),
                 "'dtype' must be a string");
  ExpectRejected(Image(R"({"a": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}})", 2),
                 "dtype 'F8_E4M3' is not supported");
  ExpectRejected(Image(R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", 8),
                 "negative dimension -2");
  ExpectRejected(Image(R"({"a": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}})", 8),
                 "'shape' entries must be integers");
  ExpectRejected(Image(R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], )"
                       R"("data_offsets": [0, 8]}})",
                       8),
                 "too large");
  ExpectRejected(Image(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8),
                 "end 0 < begin 8");
  ExpectRejected(Image(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, -8]}})", 8),
                 "'data_offsets' must be [begin, end]");
  ExpectRejected(Image(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8),
                 "8 bytes in data_offsets, but f32 [3] needs 12");
  ExpectRejected(Image(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4),
                 "ends at byte 8 of a 4-byte data buffer");
  ExpectRejected(Image(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, )"
                       R"("b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                       12),
                 "tensors 'a' and 'b' overlap");
  ExpectRejected(Image(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, )"
                       R"("a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                       8),
                 "tensor 'a' appears twice");
  ExpectRejected(Image(R"({"__metadata__": {"k": 1}})", 0), "metadata 'k' must be a string");
}

TEST(SafetensorsTest, RejectsATruncatedFileOnDisk) {
  const std::string path = Tmp("trunc.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"w", Tensor::Zeros({64}, DType::kF32)}}, {}).ok());
  const std::string bytes = ReadFile(path);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 10);
  absl::StatusOr<SafetensorsFile> f = SafetensorsFile::Open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("truncated"), std::string::npos) << f.status();
  EXPECT_FALSE(SafetensorsFile::Open(Tmp("missing.safetensors")).ok());
}

TEST(SafetensorsTest, AFailedWriteLeavesTheOldFile) {
  const std::string path = Tmp("keep.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"w", Tensor::Ones({4}, DType::kF32)}}, {}).ok());
  const std::string before = ReadFile(path);
  // The temporary name is taken by a folder: the write fails before rename.
  std::filesystem::create_directories(path + ".tmp");
  EXPECT_FALSE(WriteSafetensors(path, {{"w", Tensor::Zeros({8}, DType::kF32)}}, {}).ok());
  EXPECT_EQ(ReadFile(path), before);
  std::filesystem::remove(path + ".tmp");
  EXPECT_FALSE(WriteSafetensors(
                   Tmp("x.safetensors"),
                   {{"a", Tensor::Ones({1}, DType::kF32)}, {"a", Tensor::Ones({1}, DType::kF32)}},
                   {})
                   .ok());
}

}  // namespace
}  // namespace loom
