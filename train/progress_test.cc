#include "train/progress.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace loom {
namespace {

std::string ReadAll(FILE* f) {
  std::rewind(f);
  std::string s;
  for (int c; (c = std::fgetc(f)) != EOF;) s += char(c);
  return s;
}

TEST(ProgressTest, BarFillsInEighths) {
  EXPECT_EQ(ProgressBar::Bar(0.0, 4), "    ");
  EXPECT_EQ(ProgressBar::Bar(1.0, 4), "████");
  EXPECT_EQ(ProgressBar::Bar(0.5, 4), "██  ");
  EXPECT_EQ(ProgressBar::Bar(1.0 / 32, 4), "▏   ");  // one eighth of a cell
  EXPECT_EQ(ProgressBar::Bar(2.0, 2), "██");         // clamped
}

TEST(ProgressTest, FormatsDurations) {
  EXPECT_EQ(FormatDuration(0), "00:00");
  EXPECT_EQ(FormatDuration(75.4), "01:15");
  EXPECT_EQ(FormatDuration(3723), "01:02:03");
}

TEST(ProgressTest, PlainOutputPrintsOneLinePerUpdate) {
  FILE* f = std::tmpfile();
  ProgressBar bar(4, f, /*interactive=*/false);
  bar.Update(1, "loss 2.0");
  bar.Print("eval: loss 1.5");
  bar.Update(4, "loss 1.0");
  bar.Finish();
  const std::string out = ReadAll(f);
  EXPECT_NE(out.find(" 25% |"), std::string::npos) << out;
  EXPECT_NE(out.find("| 1/4 ["), std::string::npos) << out;
  EXPECT_NE(out.find("loss 2.0\neval: loss 1.5\n"), std::string::npos) << out;
  EXPECT_NE(out.find("100% |"), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << "no carriage returns in a log file";
}

TEST(ProgressTest, TerminalOutputRedrawsOneLine) {
  FILE* f = std::tmpfile();
  ProgressBar bar(2, f, /*interactive=*/true);
  bar.Update(1, "a");
  bar.Print("note");
  bar.Update(2, "b");
  bar.Finish();
  const std::string out = ReadAll(f);
  EXPECT_EQ(out.rfind("\r\033[2K", 0), 0u) << out;
  EXPECT_NE(out.find("note\n"), std::string::npos) << out;
  EXPECT_EQ(out.back(), '\n');
}

TEST(ProgressTest, MetricsLogWritesJsonLines) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/metrics.jsonl";
  {
    MetricsLog log;
    ASSERT_TRUE(log.Open(path).ok());
    log.Write({{"step", 1}, {"loss", 2.5}});
    log.Write({{"step", 2}, {"loss", 2.25}});
  }
  std::ifstream in(path);
  std::string a, b;
  std::getline(in, a);
  std::getline(in, b);
  EXPECT_EQ(nlohmann::json::parse(a)["loss"], 2.5);
  EXPECT_EQ(nlohmann::json::parse(b)["step"], 2);
  MetricsLog bad;
  EXPECT_FALSE(bad.Open("/nonexistent/dir/metrics.jsonl").ok());
}

}  // namespace
}  // namespace loom
