#include "data/prepared_cache.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace loom::data {
namespace {

namespace fs = std::filesystem;

std::string Tmp() { return std::getenv("TEST_TMPDIR"); }

std::string Write(const std::string& name, const std::string& text) {
  const std::string path = Tmp() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::vector<std::string> CacheFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().string());
  return out;
}

void ExpectSame(const std::vector<Example>& a, const std::vector<Example>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].input_ids, b[i].input_ids);
    EXPECT_EQ(a[i].labels, b[i].labels);
    EXPECT_EQ(a[i].prompt_len, b[i].prompt_len);
    EXPECT_EQ(a[i].answer, b[i].answer);
  }
}

TEST(PreparedCacheTest, MissThenHitThenStale) {
  const std::string dir = Tmp() + "/cache1";
  const std::string data = Write("d1.jsonl",
                                 "{\"instruction\": \"a\", \"output\": \"bc\"}\n"
                                 "{\"instruction\": \"d\", \"input\": \"e\", \"output\": \"f\"}\n");
  const DatasetSpec spec{.path = data, .type = "alpaca"};
  const TokenizeOptions options{.sequence_len = 4096};
  DatasetStats s1, s2;
  CacheOutcome o;
  auto first = LoadDatasetCached(dir, spec, ByteTokenizer(), options, &s1, &o);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(o, CacheOutcome::kMiss);
  ASSERT_EQ(CacheFiles(dir).size(), 1u);  // no temporary file left behind
  auto second = LoadDatasetCached(dir, spec, ByteTokenizer(), options, &s2, &o);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(o, CacheOutcome::kHit);
  ExpectSame(*first, *second);
  EXPECT_EQ(s1.tokens, s2.tokens);
  EXPECT_EQ(s1.rows, s2.rows);
  EXPECT_EQ((*second)[0].answer, "bc");
  // A changed option or a changed data file is a miss, never the old result.
  auto longer = LoadDatasetCached(dir, spec, ByteTokenizer(), {.sequence_len = 100}, &s2, &o);
  EXPECT_EQ(o, CacheOutcome::kMiss);
  Write("d1.jsonl", "{\"instruction\": \"a\", \"output\": \"XYZ\"}\n");
  auto changed = LoadDatasetCached(dir, spec, ByteTokenizer(), options, &s2, &o);
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(o, CacheOutcome::kMiss);
  EXPECT_EQ(changed->size(), 1u);
  EXPECT_EQ((*changed)[0].answer, "XYZ");
  DatasetSpec other = spec;
  other.type = "custom";
  other.format = PromptFormat{.format = "{instruction}:"};
  LoadDatasetCached(dir, other, ByteTokenizer(), options, &s2, &o).IgnoreError();
  EXPECT_EQ(o, CacheOutcome::kMiss);
}

TEST(PreparedCacheTest, CorruptOrTruncatedFilesAreRebuilt) {
  const std::string dir = Tmp() + "/cache2";
  const DatasetSpec spec{.path = Write("d2.jsonl", "{\"text\": \"hello\"}\n{\"text\": \"yo\"}\n")};
  DatasetStats stats;
  CacheOutcome o;
  auto fresh = LoadDatasetCached(dir, spec, ByteTokenizer(), {}, &stats, &o);
  ASSERT_TRUE(fresh.ok());
  const std::string file = CacheFiles(dir)[0];
  for (int trial = 0; trial < 3; ++trial) {
    std::string bytes;
    {
      std::ifstream in(file, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    if (trial == 0) bytes[bytes.size() / 2] ^= 0x40;  // one flipped bit in the payload
    if (trial == 1) bytes.resize(bytes.size() - 9);   // truncated
    if (trial == 2) bytes = "LOOMPREP";               // header only
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    std::string note;
    auto rebuilt = LoadDatasetCached(dir, spec, ByteTokenizer(), {}, &stats, &o, &note);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
    EXPECT_EQ(o, CacheOutcome::kRebuiltCorrupt) << trial;
    EXPECT_NE(note.find("corrupt prepared dataset"), std::string::npos) << note;
    ExpectSame(*rebuilt, *fresh);
    LoadDatasetCached(dir, spec, ByteTokenizer(), {}, &stats, &o).IgnoreError();
    EXPECT_EQ(o, CacheOutcome::kHit) << "the rebuilt file is used next time";
  }
}

TEST(PreparedCacheTest, FileRoundTripAndKeyCheck) {
  std::vector<Example> rows = {
      {.input_ids = {1, 2, 3}, .labels = {-100, 2, 3}, .prompt_len = 1, .answer = "ans"},
      {.input_ids = {}, .labels = {}},
      {.input_ids = {7}, .labels = {7}}};
  DatasetStats stats{.rows = 5, .kept = 3, .dropped_too_long = 2, .tokens = 4};
  const std::string file = Tmp() + "/rt.loomprep";
  ASSERT_TRUE(WritePreparedFile(file, "key A", rows, stats).ok());
  DatasetStats back;
  auto read = ReadPreparedFile(file, "key A", &back);
  ASSERT_TRUE(read.ok()) << read.status();
  ExpectSame(*read, rows);
  EXPECT_EQ(back.dropped_too_long, 2);
  EXPECT_EQ(back.tokens, 4);
  auto other = ReadPreparedFile(file, "key B", &back);
  EXPECT_TRUE(absl::IsDataLoss(other.status())) << other.status();
  EXPECT_TRUE(absl::IsNotFound(ReadPreparedFile(Tmp() + "/none", "k", &back).status()));
}

}  // namespace
}  // namespace loom::data
