// The emulator schedules every kernel test runs under: the thread-random and
// warp-serial policies (kernels/emu/README.md), each with a few seeds. A
// race or a missing barrier gives different results under different
// schedules, so each test states how many seeds per policy it can afford.
//
//   for (const Schedule& schedule : Schedules(/*seeds_per_policy=*/2)) {
//     SCOPED_TRACE(schedule.Name());  // "warp-serial seed 2"
//     emu::ScopedOptions options(schedule.options);
//     ...launch and compare...
//   }
#ifndef LOOM_KERNELS_CUDA_TESTING_SCHEDULES_H_
#define LOOM_KERNELS_CUDA_TESTING_SCHEDULES_H_

#include <string>
#include <vector>

#include "kernels/emu/emulator.h"

namespace loom::kernel_testing {

struct Schedule {
  emu::Options options;
  std::string Name() const;
};

// {thread-random, warp-serial} x seeds 1..seeds_per_policy, in that order.
std::vector<Schedule> Schedules(int seeds_per_policy);

}  // namespace loom::kernel_testing

#endif  // LOOM_KERNELS_CUDA_TESTING_SCHEDULES_H_
