// Test helper: runs a function on N ranks that are threads of this process, each with its own
// store connection and Gloo communicator over loopback TCP (the same code path as processes).
//
//   ASSERT_OK(RunOnThreadRanks(4, [](int rank, Communicator& comm) {
//     Tensor t = Tensor::Full({8}, rank, DType::kF32);
//     EXPECT_TRUE(comm.AllReduce(t, ReduceOp::kSum)->Wait().ok());
//   }));
#ifndef LOOM_COLLECTIVES_THREAD_RANKS_H_
#define LOOM_COLLECTIVES_THREAD_RANKS_H_

#include <functional>

#include "absl/status/status.h"
#include "collectives/communicator.h"
#include "collectives/store.h"

namespace loom::collectives {

// Short timeouts and no process exit: a failing test reports instead of hanging or exiting.
CommOptions TestCommOptions(absl::Duration timeout = absl::Seconds(20));

// Starts a store server, connects `n` thread ranks and calls fn(rank, comm, store) on each.
// Returns the first error of setting up a rank (fn reports its own failures via gtest).
absl::Status RunOnThreadRanks(int n,
                              const std::function<void(int, Communicator&, const Store&)>& fn,
                              CommOptions options = TestCommOptions());
absl::Status RunOnThreadRanks(int n, const std::function<void(int, Communicator&)>& fn,
                              CommOptions options = TestCommOptions());

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_THREAD_RANKS_H_
