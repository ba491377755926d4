#include "data/jsonl_reader.h"

#include <fstream>

#include "gtest/gtest.h"

namespace loom::data {
namespace {

std::string Write(const std::string& name, const std::string& text) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

std::vector<std::pair<int64_t, std::string>> Rows(const std::string& path, absl::Status* status) {
  std::vector<std::pair<int64_t, std::string>> rows;
  *status = ForEachRow(path, [&](const nlohmann::json& row, const RowLocation& at) {
    rows.emplace_back(at.line, row.dump());
    return absl::OkStatus();
  });
  return rows;
}

TEST(JsonlReaderTest, LinesAndArrays) {
  absl::Status st;
  auto lines = Rows(Write("a.jsonl", "{\"a\": 1}\n\n  \n{\"a\": \"}\\n\"}\r\n"), &st);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(lines, (std::vector<std::pair<int64_t, std::string>>{{1, "{\"a\":1}"},
                                                                 {4, "{\"a\":\"}\\n\"}"}}));
  auto array = Rows(Write("b.json", "\n[{\"a\": [1, {\"b\": \"]\"}]},\n {\"c\": 2}\n]\n"), &st);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(array, (std::vector<std::pair<int64_t, std::string>>{{2, "{\"a\":[1,{\"b\":\"]\"}]}"},
                                                                 {3, "{\"c\":2}"}}));
  EXPECT_TRUE(Rows(Write("c.json", "[]"), &st).empty());
  EXPECT_TRUE(st.ok());
}

TEST(JsonlReaderTest, ErrorsNameFileAndLine) {
  absl::Status st;
  Rows(Write("e1.jsonl", "{\"a\": 1}\n{\"a\": \n"), &st);
  EXPECT_NE(st.message().find("e1.jsonl:2: not valid JSON"), std::string::npos) << st;
  Rows(Write("e2.json", "[{\"a\": 1},\n 7]"), &st);
  EXPECT_NE(st.message().find("e2.json:2: each row must be a JSON object"), std::string::npos)
      << st;
  Rows(Write("e3.json", "[{\"a\": 1}"), &st);
  EXPECT_NE(st.message().find("e3.json:1: the JSON array is not closed"), std::string::npos) << st;
  Rows("/nonexistent.jsonl", &st);
  EXPECT_TRUE(absl::IsNotFound(st));
}

}  // namespace
}  // namespace loom::data
