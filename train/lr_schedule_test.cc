#include "train/lr_schedule.h"

#include <cmath>

#include "gtest/gtest.h"

namespace loom {
namespace {

LrSchedule Make(LrSchedule::Kind kind, double min_ratio = 0.0) {
  return {
      .kind = kind, .lr = 3e-4, .warmup_steps = 10, .total_steps = 100, .min_lr_ratio = min_ratio};
}

// Reference values printed by transformers 4.38 (get_{cosine,linear,constant}
// _schedule_with_warmup, 10 warmup steps of 100, lr 3e-4) with
// scheduler.get_last_lr() after `step` optimizer steps.
TEST(LrScheduleTest, MatchesTransformers) {
  struct Point {
    int64_t step;
    double cosine, linear, constant;
  };
  const Point points[] = {
      {0, 0.0, 0.0, 0.0},
      {3, 8.999999999999999e-05, 8.999999999999999e-05, 8.999999999999999e-05},
      {10, 3e-4, 3e-4, 3e-4},
      {37, 0.00023816778784387094, 0.00020999999999999998, 3e-4},
      {55, 0.00015, 0.00015, 3e-4},
      {99, 9.137594713563568e-08, 3.3333333333333333e-06, 3e-4},
      {100, 0.0, 0.0, 3e-4},
  };
  for (const Point& p : points) {
    EXPECT_NEAR(Make(LrSchedule::kCosine).At(p.step), p.cosine, 1e-15) << p.step;
    EXPECT_NEAR(Make(LrSchedule::kLinear).At(p.step), p.linear, 1e-15) << p.step;
    EXPECT_NEAR(Make(LrSchedule::kConstant).At(p.step), p.constant, 1e-15) << p.step;
  }
}

TEST(LrScheduleTest, CosineEndsAtMinRatio) {
  const LrSchedule s = Make(LrSchedule::kCosine, 0.1);
  EXPECT_DOUBLE_EQ(s.At(10), 3e-4);
  EXPECT_DOUBLE_EQ(s.At(55), 3e-4 * (0.1 + 0.9 * 0.5));
  EXPECT_DOUBLE_EQ(s.At(100), 3e-5);
  EXPECT_DOUBLE_EQ(s.At(500), 3e-5);  // past the end: clamped
}

TEST(LrScheduleTest, NoWarmupStartsAtFullRate) {
  LrSchedule s = Make(LrSchedule::kLinear);
  s.warmup_steps = 0;
  EXPECT_DOUBLE_EQ(s.At(0), 3e-4);
  EXPECT_DOUBLE_EQ(s.At(50), 1.5e-4);
}

TEST(LrScheduleTest, ParsesNamesWithSuggestions) {
  EXPECT_EQ(*ParseLrSchedulerName("cosine"), LrSchedule::kCosine);
  EXPECT_EQ(*ParseLrSchedulerName("linear"), LrSchedule::kLinear);
  EXPECT_EQ(*ParseLrSchedulerName("constant"), LrSchedule::kConstant);
  absl::StatusOr<LrSchedule::Kind> bad = ParseLrSchedulerName("cosin");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("did you mean 'cosine'?"), std::string::npos)
      << bad.status();
}

}  // namespace
}  // namespace loom
