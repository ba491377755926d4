#include "kernels/cuda/testing/schedules.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace loom::kernel_testing {
namespace {

TEST(SchedulesTest, BothPoliciesWithDistinctNamedSeeds) {
  const std::vector<Schedule> s = Schedules(3);
  ASSERT_EQ(s.size(), 6u);
  std::set<std::string> names;
  for (size_t i = 0; i < s.size(); ++i) {
    EXPECT_EQ(s[i].options.policy, i < 3 ? emu::Policy::kThreadRandom : emu::Policy::kWarpSerial);
    EXPECT_EQ(s[i].options.seed, i % 3 + 1);
    names.insert(s[i].Name());
  }
  EXPECT_EQ(names.size(), 6u);
  EXPECT_EQ(s[4].Name(), "warp-serial seed 2");
  EXPECT_EQ(Schedules(1).size(), 2u);
}

TEST(SchedulesDeathTest, NeedsASeed) { EXPECT_DEATH(Schedules(0), "at least one seed"); }

}  // namespace
}  // namespace loom::kernel_testing
