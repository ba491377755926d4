// Reference checks of every collective, shared by the thread-rank tests, the process tests and
// the mesh tests: inputs are a function of (rank, index) that every rank computes locally, so
// each rank knows the exact expected result of every operation.
//
//   LOOM_RETURN_IF_ERROR(RunCollectiveCases(comm));   // every op, every dtype
#ifndef LOOM_COLLECTIVES_COLLECTIVE_CASES_H_
#define LOOM_COLLECTIVES_COLLECTIVE_CASES_H_

#include <vector>

#include "absl/status/status.h"
#include "collectives/communicator.h"

namespace loom::collectives {

inline const std::vector<DType>& CollectiveDTypes() {
  static const std::vector<DType> kAll = {DType::kF32, DType::kBF16, DType::kF16,
                                          DType::kI32, DType::kI64,  DType::kF64};
  return kAll;
}

// The input element `i` of `rank` (small integers, exact in every dtype and in sums).
double CaseValue(int rank, int64_t i, int salt);

// All-reduce (sum, avg, max), all-gather (equal and uneven, with an empty contribution),
// reduce-scatter (sum, avg, max), broadcast, a ring SendRecv step, paired Send/Recv and a
// barrier, for each dtype. Returns the first difference, naming op, dtype and element.
absl::Status RunCollectiveCases(Communicator& comm,
                                const std::vector<DType>& dtypes = CollectiveDTypes());

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_COLLECTIVE_CASES_H_
