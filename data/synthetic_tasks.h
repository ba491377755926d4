// Synthetic instruction tasks with checkable answers, for the embedded
// example and tests: short enough for a byte-level model, hard enough that
// chance accuracy is ~0.
//
//   Philox rows(seed);  SyntheticRow r = MakeSyntheticRow(SyntheticTask::kReverse, seed, i);
//   // r.instruction == "rev kqpd", r.output == "dpqk"
#ifndef LOOM_DATA_SYNTHETIC_TASKS_H_
#define LOOM_DATA_SYNTHETIC_TASKS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace loom::data {

enum class SyntheticTask {
  kReverse,  // "rev abcd" -> "dcba" (3-6 lowercase letters)
  kSort,     // "sort 4132" -> "1234" (3-6 digits)
  kAdd,      // "add 17 25" -> "42" (two numbers in [0, 100))
  kUpper,    // "up abc" -> "ABC" (3-6 lowercase letters)
};

struct SyntheticRow {
  std::string instruction;
  std::string output;
};

// Row `index` of `task`, a function of (seed, task, index) alone.
SyntheticRow MakeSyntheticRow(SyntheticTask task, uint64_t seed, uint64_t index);

// "rev" | "sort" | "add" | "up" (errors list the valid names).
absl::StatusOr<SyntheticTask> ParseSyntheticTask(const std::string& name);
const char* SyntheticTaskName(SyntheticTask task);

}  // namespace loom::data

#endif  // LOOM_DATA_SYNTHETIC_TASKS_H_
