// Multi-threading for CPU kernels: a fixed pool and ParallelFor.
//
// Kernels split work with ParallelFor; anything whose result could depend on
// the split (sums) must reduce fixed-size blocks and combine them in block
// order, so results are bit-identical for any thread count. That is what
// makes single-rank and multi-rank runs comparable to the last bit.
#ifndef LOOM_RUNTIME_PARALLEL_H_
#define LOOM_RUNTIME_PARALLEL_H_

#include <cstdint>
#include <functional>

namespace loom {

// Worker count: LOOM_NUM_THREADS if set, else the hardware's cores.
int NumThreads();
// Changes the worker count (tests, benchmarks). Not while work is running.
void SetNumThreads(int n);

// Calls fn(begin, end) over [0, n) in contiguous chunks of at least `grain`
// items, on up to NumThreads() threads. Nested calls run serially.
void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace loom

#endif  // LOOM_RUNTIME_PARALLEL_H_
