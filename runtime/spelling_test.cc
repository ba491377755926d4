#include "runtime/spelling.h"

#include "gtest/gtest.h"

namespace loom {
namespace {

TEST(SpellingTest, EditDistance) {
  EXPECT_EQ(EditDistance("", ""), 0);
  EXPECT_EQ(EditDistance("abc", ""), 3);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
  EXPECT_EQ(EditDistance("learnign_rate", "learning_rate"), 1);  // transposition
  EXPECT_EQ(EditDistance("Seed", "seed"), 0);                    // case-insensitive
}

TEST(SpellingTest, ClosestMatchPicksNearestWithinLimit) {
  const std::vector<std::string> keys = {"learning_rate", "lr_scheduler", "seed", "max_steps"};
  EXPECT_EQ(ClosestMatch("learnin_rate", keys), "learning_rate");
  EXPECT_EQ(ClosestMatch("max_step", keys), "max_steps");
  EXPECT_EQ(ClosestMatch("sed", keys), "seed");
  EXPECT_EQ(ClosestMatch("tokenizer_type", keys), "");         // nothing close
  EXPECT_EQ(ClosestMatch("learning", keys), "learning_rate");  // a truncated name
  EXPECT_EQ(ClosestMatch("max", keys), "");                    // too short to be a hint
  EXPECT_EQ(DidYouMean("sede", keys), ", did you mean 'seed'?");
  EXPECT_EQ(DidYouMean("zzzzzzzz", keys), "");
}

}  // namespace
}  // namespace loom
