#include "data/dataset.h"

#include <filesystem>
#include <fstream>

#include "data/bpe_tokenizer.h"
#include "gtest/gtest.h"

namespace loom::data {
namespace {

constexpr int32_t kBos = ByteTokenizer::kBos, kEos = ByteTokenizer::kEos, kIgn = kIgnoreIndex;

std::string Write(const std::string& name, const std::string& text) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::vector<int32_t> Bytes(const std::string& s) {
  return std::vector<int32_t>(s.begin(), s.end());
}

std::vector<int32_t> Concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

absl::StatusOr<std::vector<Example>> Load(const DatasetSpec& spec, TokenizeOptions options = {},
                                          DatasetStats* stats = nullptr) {
  return LoadDataset(spec, ByteTokenizer(), options, stats);
}

void ExpectError(const DatasetSpec& spec, const std::string& needle) {
  absl::StatusOr<std::vector<Example>> r = Load(spec);
  ASSERT_FALSE(r.ok()) << needle;
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

TEST(ByteTokenizerTest, RoundTripsUtf8AndSkipsSpecials) {
  ByteTokenizer tok;
  const std::string text = "héllo, 世界\n";
  std::vector<int32_t> ids = tok.Encode(text);
  EXPECT_EQ(ids.size(), text.size());
  EXPECT_EQ(ids[1], 0xc3);  // first byte of é
  ids.insert(ids.begin(), kBos);
  ids.push_back(kEos);
  ids.push_back(ByteTokenizer::kPad);
  EXPECT_EQ(tok.Decode(ids), text);
  EXPECT_EQ(tok.vocab_size(), 259);
}

TEST(DatasetTest, CompletionTrainsEveryTokenAfterBos) {
  DatasetStats stats;
  auto rows = Load({.path = Write("c.jsonl", "{\"text\": \"ab\"}\n\n{\"text\": \"xyz\"}\n"),
                    .type = "completion"},
                   {}, &stats);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].input_ids, (std::vector<int32_t>{kBos, 'a', 'b', kEos}));
  EXPECT_EQ((*rows)[0].labels, (std::vector<int32_t>{kIgn, 'a', 'b', kEos}));
  EXPECT_EQ((*rows)[0].prompt_len, 0);
  EXPECT_EQ(stats.rows, 2);
  EXPECT_EQ(stats.tokens, 4 + 5);
  EXPECT_EQ(stats.trainable_tokens, 3 + 4);
}

TEST(DatasetTest, CompletionUsesTheConfiguredField) {
  auto rows = Load(
      {.path = Write("f.jsonl", "{\"body\": \"q\"}\n"), .type = "completion", .field = "body"});
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].input_ids, (std::vector<int32_t>{kBos, 'q', kEos}));
}

TEST(DatasetTest, PretokenizedRowsAreUsedAsGiven) {
  auto rows = Load({.path = Write("p.jsonl",
                                  "{\"input_ids\": [1, 2, 3], \"labels\": [-100, 2, 3]}\n"
                                  "{\"input_ids\": [4, 5]}\n"),
                    .type = "pretokenized"});
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].input_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ((*rows)[0].labels, (std::vector<int32_t>{kIgn, 2, 3}));
  EXPECT_EQ((*rows)[1].labels, (std::vector<int32_t>{4, 5}));
}

TEST(DatasetTest, AlpacaMasksThePromptLiterally) {
  const std::string no_input =
      "Below is an instruction that describes a task. Write a response that appropriately "
      "completes the request.\n\n### Instruction:\nSay hi\n\n### Response:\n";
  const std::string with_input =
      "Below is an instruction that describes a task, paired with an input that provides further "
      "context. Write a response that appropriately completes the request.\n\n### "
      "Instruction:\nEcho\n\n### Input:\nzz\n\n### Response:\n";
  auto rows =
      Load({.path = Write("a.jsonl",
                          "{\"instruction\": \"Say hi\", \"output\": \"hi\"}\n"
                          "{\"instruction\": \"Echo\", \"input\": \"zz\", \"output\": \"zz\"}\n"),
            .type = "alpaca"},
           {.sequence_len = 4096});
  ASSERT_TRUE(rows.ok()) << rows.status();
  const Example& a = (*rows)[0];
  EXPECT_EQ(a.input_ids, Concat({{kBos}, Bytes(no_input), Bytes("hi"), {kEos}}));
  EXPECT_EQ(a.prompt_len, int64_t(1 + no_input.size()));
  EXPECT_EQ(a.answer, "hi");
  for (int64_t i = 0; i < a.prompt_len; ++i) EXPECT_EQ(a.labels[size_t(i)], kIgn) << i;
  EXPECT_EQ(std::vector<int32_t>(a.labels.begin() + a.prompt_len, a.labels.end()),
            (std::vector<int32_t>{'h', 'i', kEos}));
  EXPECT_EQ((*rows)[1].input_ids, Concat({{kBos}, Bytes(with_input), Bytes("zz"), {kEos}}));
}

TEST(DatasetTest, CustomFormatWithAndWithoutInputAndSystemPrompt) {
  PromptFormat f;
  f.format = "Q: {instruction} [{input}]\nA: ";
  f.no_input_format = "Q: {instruction}\nA: ";
  f.field_output = "answer";
  f.system_prompt = "Be brief.";
  f.system_format = "<{system}>";
  auto rows =
      Load({.path = Write("u.jsonl",
                          "{\"instruction\": \"add 1 2\", \"answer\": \"3\"}\n"
                          "{\"instruction\": \"x\", \"input\": \"y\", \"answer\": \"z\"}\n"),
            .type = "custom",
            .format = f});
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].input_ids,
            Concat({{kBos}, Bytes("<Be brief.>Q: add 1 2\nA: "), Bytes("3"), {kEos}}));
  EXPECT_EQ((*rows)[0].prompt_len, 1 + 25);  // BOS + "<Be brief.>Q: add 1 2\nA: "
  EXPECT_EQ((*rows)[1].input_ids,
            Concat({{kBos}, Bytes("<Be brief.>Q: x [y]\nA: "), Bytes("z"), {kEos}}));
}

TEST(DatasetTest, TrainOnInputsTrainsThePromptButNotBos) {
  PromptFormat f;
  f.format = "{instruction}=";
  auto rows = Load({.path = Write("t.jsonl", "{\"instruction\": \"ab\", \"output\": \"c\"}\n"),
                    .type = "custom",
                    .format = f},
                   {.train_on_inputs = true});
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].labels, (std::vector<int32_t>{kIgn, 'a', 'b', '=', 'c', kEos}));
  EXPECT_EQ((*rows)[0].prompt_len, 4);
}

TEST(DatasetTest, InfersTheTypeFromTheFirstRow) {
  auto alpaca =
      Load({.path = Write("i1.jsonl", "{\"instruction\": \"a\", \"output\": \"b\"}\n"), .type = ""},
           {.sequence_len = 4096});
  ASSERT_TRUE(alpaca.ok()) << alpaca.status();
  EXPECT_GT((*alpaca)[0].prompt_len, 0);
  auto pre = Load({.path = Write("i2.jsonl", "{\"input_ids\": [7, 8]}\n")});
  ASSERT_TRUE(pre.ok());
  EXPECT_EQ((*pre)[0].input_ids, (std::vector<int32_t>{7, 8}));
  auto text = Load({.path = Write("i3.jsonl", "{\"text\": \"k\"}\n")});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ((*text)[0].input_ids.size(), 3u);
  ExpectError({.path = Write("i4.jsonl", "{\"prompt\": \"k\"}\n")}, "i4.jsonl:1: cannot tell");
}

TEST(DatasetTest, DropsAndCountsLongRows) {
  DatasetStats stats;
  auto rows = Load({.path = Write("d.jsonl",
                                  "{\"text\": \"0123456789\"}\n"  // 12 tokens: too long
                                  "{\"text\": \"ok\"}\n"),
                    .type = ""},
                   {.sequence_len = 8}, &stats);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->size(), 1u);
  EXPECT_EQ(stats.rows, 2);
  EXPECT_EQ(stats.kept, 1);
  EXPECT_EQ(stats.dropped_too_long, 1);
}

TEST(DatasetTest, UntrainedRowsAreDropped) {
  DatasetStats stats;
  auto rows = Load({.path = Write("n.jsonl",
                                  "{\"input_ids\": [1, 2], \"labels\": [1, -100]}\n"
                                  "{\"input_ids\": [1, 2], \"labels\": [-100, 2]}\n"),
                    .type = "pretokenized"},
                   {}, &stats);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 1u);
  EXPECT_EQ(stats.dropped_untrained, 1);
}

TEST(DatasetTest, ErrorsNameFileLineAndField) {
  ExpectError({.path = "/nonexistent/x.jsonl"}, "/nonexistent/x.jsonl: cannot open");
  ExpectError({.path = Write("e0.jsonl", "\n\n")}, "e0.jsonl: no rows");
  ExpectError({.path = Write("e1.jsonl", "{\"text\": \"a\"}\n{\"text\": \"b\"\n")},
              "e1.jsonl:2: not valid JSON");
  ExpectError({.path = Write("e2.jsonl", "[1, 2]\n")},
              "e2.jsonl:1: each row must be a JSON object");
  ExpectError(
      {.path = Write("e3.jsonl", "{\"instruction\": \"a\", \"output\": 5}\n"), .type = "alpaca"},
      "e3.jsonl:1: field 'output' must be a string, got 5");
  ExpectError({.path = Write("e4.jsonl", "{\"instruction\": \"a\"}\n"), .type = "alpaca"},
              "e4.jsonl:1: missing field 'output'");
  ExpectError({.path = Write("e5.jsonl", "{\"input_ids\": [1, 300]}\n"), .type = "pretokenized"},
              "e5.jsonl:1: input_ids[1] = 300 is outside the vocabulary [0, 259)");
  ExpectError({.path = Write("e6.jsonl", "{\"input_ids\": [1, 2], \"labels\": [1]}\n")},
              "e6.jsonl:1: 'labels' has 1 entries but 'input_ids' has 2");
  ExpectError({.path = Write("e7.jsonl", "{\"input_ids\": [1, \"x\"]}\n")},
              "e7.jsonl:1: input_ids[1] must be an integer");
  ExpectError({.path = Write("e8.jsonl", "{\"text\": \"a\"}\n"), .type = "chat"},
              "unknown dataset type 'chat'");
}

TEST(DatasetTest, ShuffleAndSplitTakesTheTailOfAShuffle) {
  std::vector<Example> rows(10);
  for (int i = 0; i < 10; ++i) rows[size_t(i)].input_ids = {i};
  auto split = ShuffleAndSplit(rows, 0.25, 3);  // ceil(2.5) = 3 rows
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->train.size(), 7u);
  EXPECT_EQ(split->val.size(), 3u);
  std::vector<int> seen;
  for (const auto* part : {&split->train, &split->val}) {
    for (const Example& e : *part) seen.push_back(e.input_ids[0]);
  }
  std::vector<int> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_NE(seen, sorted) << "not shuffled";
  auto again = ShuffleAndSplit(rows, 0.25, 3);
  EXPECT_EQ(again->val[0].input_ids, split->val[0].input_ids);
  auto count = ShuffleAndSplit(rows, 4, 3);
  EXPECT_EQ(count->val.size(), 4u);
  EXPECT_EQ(ShuffleAndSplit(rows, 0, 3)->val.size(), 0u);
  EXPECT_FALSE(ShuffleAndSplit(rows, 10, 3).ok());
  EXPECT_FALSE(ShuffleAndSplit(rows, 2.5, 3).ok());
}

}  // namespace
}  // namespace loom::data

namespace loom::data {
namespace {

TEST(DatasetTest, TheModelsVocabularyBoundsIdsAndMustHoldTheTokenizers) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/vocab.jsonl";
  std::ofstream(path) << "{\"input_ids\": [5, 1999, 7]}\n";
  auto big = LoadDataset({.path = path}, ByteTokenizer(), {.vocab_size = 2000}, nullptr);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ((*big)[0].input_ids[1], 1999);
  auto small = LoadDataset({.path = path}, ByteTokenizer(), {.vocab_size = 1000}, nullptr);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().message().find("outside the vocabulary [0, 1000)"), std::string::npos);
  const std::string text = std::string(std::getenv("TEST_TMPDIR")) + "/text.jsonl";
  std::ofstream(text) << "{\"text\": \"hi\"}\n";
  auto tiny = LoadDataset({.path = text}, ByteTokenizer(), {.vocab_size = 64}, nullptr);
  ASSERT_FALSE(tiny.ok());
  EXPECT_NE(tiny.status().message().find("need the tokenizer's 259 ids, but the model's "
                                         "vocab_size is 64"),
            std::string::npos)
      << tiny.status();
}

}  // namespace
}  // namespace loom::data

namespace loom::data {
namespace {

std::string Tmp(const std::string& name, const std::string& text) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
  return path;
}

TEST(DatasetTest, FoldersAndJsonArraysWithLineNumbers) {
  Tmp("folder/b.jsonl", "{\"text\": \"bb\"}\n");
  Tmp("folder/a.json", "[\n  {\"text\": \"a\"},\n  {\"text\": \"[x]\\\"\"}\n]\n");
  Tmp("folder/ignored.txt", "not data");
  DatasetStats stats;
  auto rows = LoadDataset({.path = std::string(std::getenv("TEST_TMPDIR")) + "/folder"},
                          ByteTokenizer(), {}, &stats);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 3u);  // a.json first (name order), then b.jsonl
  EXPECT_EQ((*rows)[1].input_ids, (std::vector<int32_t>{kBos, '[', 'x', ']', '"', kEos}));
  EXPECT_EQ((*rows)[2].input_ids.size(), 4u);
  const std::string bad = Tmp("arr.json", "[\n  {\"text\": \"a\"},\n\n  {\"txt\": 1}\n]");
  auto err = LoadDataset({.path = bad, .type = "completion"}, ByteTokenizer(), {}, nullptr);
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.status().message().find("arr.json:4: missing field 'text'"), std::string::npos)
      << err.status();
  auto empty_dir = LoadDataset({.path = std::string(std::getenv("TEST_TMPDIR")) + "/folder/none"},
                               ByteTokenizer(), {}, nullptr);
  EXPECT_FALSE(empty_dir.ok());
}

TEST(DatasetTest, ExcessLengthStrategies) {
  const std::string path = Tmp("long.jsonl", "{\"text\": \"0123456789\"}\n{\"text\": \"\"}\n");
  DatasetStats stats;
  auto trunc = LoadDataset({.path = path}, ByteTokenizer(),
                           {.sequence_len = 5, .excess_length_strategy = "truncate"}, &stats);
  ASSERT_TRUE(trunc.ok()) << trunc.status();
  ASSERT_EQ(trunc->size(), 2u);
  EXPECT_EQ((*trunc)[0].input_ids, (std::vector<int32_t>{kBos, '0', '1', '2', '3'}));
  EXPECT_EQ(stats.truncated, 1);
  auto raise = LoadDataset({.path = path}, ByteTokenizer(),
                           {.sequence_len = 5, .excess_length_strategy = "raise"}, nullptr);
  ASSERT_FALSE(raise.ok());
  EXPECT_NE(raise.status().message().find(
                "long.jsonl:1: the row has 12 tokens, more than sequence_len 5"),
            std::string::npos)
      << raise.status();
  // BOS + EOS = 2 tokens: kept at min_sample_len 2, dropped at 3.
  auto short_rows = LoadDataset({.path = path}, ByteTokenizer(),
                                {.sequence_len = 64, .min_sample_len = 3}, &stats);
  ASSERT_TRUE(short_rows.ok());
  EXPECT_EQ(short_rows->size(), 1u);
  EXPECT_EQ(stats.dropped_too_short, 1);
  EXPECT_FALSE(
      LoadDataset({.path = path}, ByteTokenizer(), {.excess_length_strategy = "cut"}, nullptr)
          .ok());
}

TEST(DatasetTest, ChatTemplateRowsWithMappingsAndRoleAliases) {
  auto tok = LoadBpeTokenizer("data/testdata/tokenizers/llama3_style");
  ASSERT_TRUE(tok.ok()) << tok.status();
  const std::string path =
      Tmp("chat.jsonl",
          "{\"conversations\": [{\"from\": \"human\", \"value\": \"Hi\"}, "
          "{\"from\": \"gpt\", \"value\": \"Hello there\"}]}\n"
          "{\"conversations\": [{\"from\": \"human\", \"value\": \"Only a question\"}]}\n");
  DatasetSpec spec{.path = path,
                   .type = "chat_template",
                   .field_messages = "conversations",
                   .message_property_mappings = {{"role", "from"}, {"content", "value"}}};
  DatasetStats stats;
  auto rows = LoadDataset(spec, **tok, {}, &stats);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(stats.dropped_untrained, 1);  // nothing to train in row 2: really dropped
  std::vector<int32_t> trained;
  for (int32_t l : (*rows)[0].labels) {
    if (l != kIgnoreIndex) trained.push_back(l);
  }
  EXPECT_EQ((*tok)->Decode(trained), "Hello there");
  EXPECT_EQ(trained.back(), (*tok)->eos_id());  // <|eot_id|> of the trained turn
  const std::string bad =
      Tmp("chat_bad.jsonl", "{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}\n");
  auto err = LoadDataset({.path = bad, .type = "chat_template"}, **tok, {}, nullptr);
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.status().message().find("chat_bad.jsonl:1: messages[0]: unknown role 'bot'"),
            std::string::npos)
      << err.status();
  auto no_template =
      LoadDataset({.path = bad, .type = "chat_template"}, ByteTokenizer(), {}, nullptr);
  ASSERT_FALSE(no_template.ok());
  EXPECT_NE(no_template.status().message().find("chat_template"), std::string::npos);
}

TEST(DatasetTest, AlpacaWithAHuggingFaceTokenizerFollowsItsBosRule) {
  const std::string path =
      Tmp("hf_alpaca.jsonl", "{\"instruction\": \"Say hi\", \"output\": \"hi\"}\n");
  for (const char* dir :
       {"data/testdata/tokenizers/llama3_style", "data/testdata/tokenizers/gpt2_style"}) {
    auto tok = LoadBpeTokenizer(dir);
    ASSERT_TRUE(tok.ok()) << tok.status();
    auto rows =
        LoadDataset({.path = path, .type = "alpaca"}, **tok, {.sequence_len = 4096}, nullptr);
    ASSERT_TRUE(rows.ok()) << rows.status();
    const Example& e = (*rows)[0];
    EXPECT_EQ(e.input_ids[0] == (*tok)->bos_id(), (*tok)->adds_bos()) << dir;
    EXPECT_EQ(e.input_ids.back(), (*tok)->eos_id());
    std::vector<int32_t> trained;
    for (size_t i = 0; i < e.labels.size(); ++i) {
      if (e.labels[i] != kIgnoreIndex) trained.push_back(e.labels[i]);
      EXPECT_EQ(e.labels[i] != kIgnoreIndex, int64_t(i) >= e.prompt_len) << i;
    }
    EXPECT_EQ((*tok)->Decode(trained), "hi");
  }
}

}  // namespace
}  // namespace loom::data
