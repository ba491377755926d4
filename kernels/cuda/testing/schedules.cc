#include "kernels/cuda/testing/schedules.h"

#include "absl/strings/str_cat.h"
#include "runtime/status.h"

namespace loom::kernel_testing {

std::string Schedule::Name() const {
  return absl::StrCat(emu::PolicyName(options.policy), " seed ", options.seed);
}

std::vector<Schedule> Schedules(int seeds_per_policy) {
  LOOM_CHECK(seeds_per_policy >= 1, "Schedules(%d): at least one seed", seeds_per_policy);
  std::vector<Schedule> out;
  for (emu::Policy policy : {emu::Policy::kThreadRandom, emu::Policy::kWarpSerial}) {
    for (int seed = 1; seed <= seeds_per_policy; ++seed) {
      out.push_back({{.policy = policy, .seed = uint64_t(seed)}});
    }
  }
  return out;
}

}  // namespace loom::kernel_testing
