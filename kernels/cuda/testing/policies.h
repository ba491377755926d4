// The emulator scheduling policies every kernel test runs under:
// {thread-random, warp-serial} x seeds, named for failure messages.
//
//   for (const emu::Options& o : kernel_testing::Policies()) {
//     SCOPED_TRACE(kernel_testing::Name(o));
//     emu::ScopedOptions scoped(o);
//     ...launch and compare...
//   }
#ifndef LOOM_KERNELS_CUDA_TESTING_POLICIES_H_
#define LOOM_KERNELS_CUDA_TESTING_POLICIES_H_

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/emu/emulator.h"

namespace loom::kernel_testing {

inline std::vector<emu::Options> Policies(int seeds = 2) {
  std::vector<emu::Options> out;
  for (emu::Policy p : {emu::Policy::kThreadRandom, emu::Policy::kWarpSerial}) {
    for (int s = 1; s <= seeds; ++s) out.push_back({.policy = p, .seed = uint64_t(s)});
  }
  return out;
}

inline std::string Name(const emu::Options& o) {
  return absl::StrCat("policy ", emu::PolicyName(o.policy), ", seed ", o.seed);
}

}  // namespace loom::kernel_testing

#endif  // LOOM_KERNELS_CUDA_TESTING_POLICIES_H_
