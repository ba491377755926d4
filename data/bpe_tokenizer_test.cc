#include "data/bpe_tokenizer.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace loom::data {
namespace {

using json = nlohmann::json;

const char kGpt2[] = "data/testdata/tokenizers/gpt2_style";
const char kLlama3[] = "data/testdata/tokenizers/llama3_style";

std::vector<json> Goldens(const std::string& dir) {
  std::ifstream in(dir + "/goldens.jsonl");
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(json::parse(line));
  return rows;
}

// Every golden text: ids (plain and with the post-processor's specials),
// transformers' input_ids, token offsets and decoding, as the Python
// tokenizers package computed them.
void CheckGoldens(const std::string& dir) {
  auto tok = LoadBpeTokenizer(dir);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const std::vector<json> rows = Goldens(dir);
  ASSERT_GT(rows.size(), 300u);
  const json& meta = rows[0]["meta"];
  EXPECT_EQ((*tok)->eos_id(), meta["eos_token_id"].get<int32_t>());
  if (!meta["bos_token_id"].is_null()) {
    EXPECT_EQ((*tok)->bos_id(), meta["bos_token_id"].get<int32_t>());
  }
  EXPECT_EQ((*tok)->pad_id(), meta["pad_token_id"].is_null() ? (*tok)->eos_id()
                                                             : meta["pad_token_id"].get<int32_t>());
  EXPECT_EQ((*tok)->vocab_size(), meta["vocab_size"].get<int64_t>());
  int failures = 0;
  for (size_t r = 1; r < rows.size() && failures < 10; ++r) {
    const std::string text = rows[r]["text"];
    std::vector<std::pair<size_t, size_t>> offsets;
    const std::vector<int32_t> ids = (*tok)->EncodeWithOffsets(text, &offsets);
    const auto want = rows[r]["ids"].get<std::vector<int32_t>>();
    if (ids != want) ++failures;
    EXPECT_EQ(ids, want) << "text " << json(text).dump();
    std::vector<int32_t> with = ids;
    if ((*tok)->adds_bos()) with.insert(with.begin(), (*tok)->bos_id());
    if ((*tok)->adds_eos()) with.push_back((*tok)->eos_id());
    EXPECT_EQ(with, rows[r]["ids_with_special"].get<std::vector<int32_t>>()) << json(text).dump();
    EXPECT_EQ(with, rows[r]["hf_input_ids"].get<std::vector<int32_t>>()) << json(text).dump();
    if (ids == want) {
      std::vector<std::pair<size_t, size_t>> golden;
      for (const json& o : rows[r]["offsets"]) golden.emplace_back(o[0], o[1]);
      // tokenizers reports offsets in bytes of the input for byte-level
      // tokens; a token that ends inside a multi-byte character is widened
      // to the character by both, so compare where the text is ASCII-only.
      bool ascii = true;
      for (unsigned char c : text) ascii &= c < 0x80;
      if (ascii) {
        EXPECT_EQ(offsets, golden) << json(text).dump();
      }
      EXPECT_EQ((*tok)->Decode(ids), rows[r]["decoded"].get<std::string>()) << json(text).dump();
    }
  }
}

TEST(BpeTokenizerTest, Gpt2StyleMatchesHuggingFace) { CheckGoldens(kGpt2); }
TEST(BpeTokenizerTest, Llama3StyleMatchesHuggingFace) { CheckGoldens(kLlama3); }

TEST(BpeTokenizerTest, SpecialTokensAndRules) {
  auto llama = LoadBpeTokenizer(kLlama3);
  ASSERT_TRUE(llama.ok()) << llama.status();
  EXPECT_TRUE((*llama)->adds_bos());
  EXPECT_FALSE((*llama)->adds_eos());
  EXPECT_EQ((*llama)->TokenId("<|eot_id|>"), (*llama)->eos_id());
  EXPECT_NE((*llama)->chat_template().find("<|start_header_id|>"), std::string::npos);
  const std::vector<int32_t> ids = (*llama)->Encode("hi<|eot_id|>");
  EXPECT_EQ(ids.back(), (*llama)->eos_id());
  EXPECT_EQ((*llama)->Decode(ids), "hi");  // special tokens are skipped
  auto gpt2 = LoadBpeTokenizer(std::string(kGpt2) + "/tokenizer.json");
  ASSERT_TRUE(gpt2.ok()) << gpt2.status();
  EXPECT_FALSE((*gpt2)->adds_bos());
  EXPECT_TRUE((*gpt2)->TokenId("<|im_start|>").has_value());
  EXPECT_NE((*llama)->Fingerprint(), (*gpt2)->Fingerprint());
}

std::string WriteTokenizer(const std::string& name, const json& j) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokenizer.json") << j.dump();
  std::ofstream(dir + "/tokenizer_config.json") << R"({"eos_token": "<|end_of_text|>"})";
  return dir;
}

TEST(BpeTokenizerTest, UnsupportedFilesAreClearErrors) {
  std::ifstream in(std::string(kLlama3) + "/tokenizer.json");
  const json base = json::parse(in);
  auto expect = [&](const std::string& name, json j, const std::string& needle) {
    auto t = LoadBpeTokenizer(WriteTokenizer(name, j));
    ASSERT_FALSE(t.ok()) << name;
    EXPECT_NE(t.status().message().find(needle), std::string::npos) << t.status();
  };
  json j = base;
  j["model"]["type"] = "WordPiece";
  expect("wp", j, "model.type: only BPE is supported, got \"WordPiece\"");
  j = base;
  j["normalizer"] = {{"type", "NFC"}};
  expect("nfc", j, "normalizer: only null is supported, got NFC");
  j = base;
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\w+";
  expect("regex", j, "only the GPT-2 and Llama-3 split patterns are built in");
  j = base;
  j["model"]["merges"][0] = "nosuch token";
  expect("merge", j, "model.merges[0] 'nosuch token' names a token missing from model.vocab");
  auto missing = LoadBpeTokenizer("/nonexistent/dir/tokenizer.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/dir/tokenizer.json: cannot open"),
            std::string::npos);
}

// A hand-made vocabulary: merges given as [left, right] pairs, and
// ignore_merges (Llama-3's tokenizer.json sets it): a pre-token that is a
// vocabulary entry is one token even when no merge path builds it.
TEST(BpeTokenizerTest, IgnoreMergesAndPairMerges) {
  // GPT-2's byte alphabet: printable bytes as themselves, the rest from U+0100.
  json vocab = json::object();
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const int cp = printable ? b : next++;
    std::string utf8;
    if (cp < 0x80) {
      utf8 = std::string(1, char(cp));
    } else {
      utf8 = {char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))};
    }
    vocab[utf8] = b;
  }
  vocab["ab"] = 256;
  vocab["abc"] = 257;
  vocab["<eos>"] = 258;
  json j = {
      {"model",
       {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({json::array({"a", "b"})})}}},
      {"added_tokens", json::array({{{"id", 258}, {"content", "<eos>"}, {"special", true}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
      {"post_processor", nullptr}};
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/handmade";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokenizer_config.json") << R"({"eos_token": "<eos>"})";
  std::ofstream(dir + "/tokenizer.json") << j.dump();
  auto plain = LoadBpeTokenizer(dir);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)->Encode("abc"), (std::vector<int32_t>{256, 'c'}));
  EXPECT_EQ((*plain)->pad_id(), 258);  // no pad_token: EOS
  j["model"]["ignore_merges"] = true;
  std::ofstream(dir + "/tokenizer.json") << j.dump();
  auto ignore = LoadBpeTokenizer(dir);
  ASSERT_TRUE(ignore.ok()) << ignore.status();
  EXPECT_EQ((*ignore)->Encode("abc"), (std::vector<int32_t>{257}));
  // "abcab" is not an entry: the merges apply as usual.
  EXPECT_EQ((*ignore)->Encode("abcab<eos>"), (std::vector<int32_t>{256, 'c', 256, 258}));
  EXPECT_EQ((*ignore)->Decode({257, 256, 258}), "abcab");
}

}  // namespace
}  // namespace loom::data
