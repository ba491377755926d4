#include "data/synthetic_tasks.h"

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace loom::data {
namespace {

// Checks each task's answer with an independent computation on the text.
TEST(SyntheticTasksTest, AnswersAreCorrect) {
  for (uint64_t i = 0; i < 500; ++i) {
    SyntheticRow r = MakeSyntheticRow(SyntheticTask::kReverse, 1, i);
    ASSERT_EQ(r.instruction.rfind("rev ", 0), 0u);
    std::string w = r.instruction.substr(4);
    EXPECT_GE(w.size(), 3u);
    EXPECT_LE(w.size(), 6u);
    std::reverse(w.begin(), w.end());
    EXPECT_EQ(r.output, w);

    r = MakeSyntheticRow(SyntheticTask::kSort, 1, i);
    std::string d = r.instruction.substr(5);
    std::sort(d.begin(), d.end());
    EXPECT_EQ(r.output, d);

    r = MakeSyntheticRow(SyntheticTask::kAdd, 1, i);
    std::vector<std::string> parts = absl::StrSplit(r.instruction, ' ');
    ASSERT_EQ(parts.size(), 3u);
    int a = 0, b = 0;
    ASSERT_TRUE(absl::SimpleAtoi(parts[1], &a) && absl::SimpleAtoi(parts[2], &b));
    EXPECT_EQ(r.output, std::to_string(a + b));

    r = MakeSyntheticRow(SyntheticTask::kUpper, 1, i);
    std::string u = r.instruction.substr(3);
    for (char& c : u) c = char(std::toupper(c));
    EXPECT_EQ(r.output, u);
  }
}

TEST(SyntheticTasksTest, DeterministicAndVaried) {
  std::set<std::string> distinct;
  for (uint64_t i = 0; i < 200; ++i) {
    const SyntheticRow a = MakeSyntheticRow(SyntheticTask::kReverse, 9, i);
    EXPECT_EQ(a.instruction, MakeSyntheticRow(SyntheticTask::kReverse, 9, i).instruction);
    distinct.insert(a.instruction);
  }
  EXPECT_GT(distinct.size(), 190u);
  EXPECT_NE(MakeSyntheticRow(SyntheticTask::kAdd, 9, 0).instruction,
            MakeSyntheticRow(SyntheticTask::kAdd, 10, 0).instruction);
}

TEST(SyntheticTasksTest, ParsesNames) {
  EXPECT_EQ(*ParseSyntheticTask("sort"), SyntheticTask::kSort);
  absl::StatusOr<SyntheticTask> bad = ParseSyntheticTask("revv");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("did you mean 'rev'?"), std::string::npos);
}

}  // namespace
}  // namespace loom::data
