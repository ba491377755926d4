// A CPU emulation of the CUDA execution model, for testing kernel sources.
//
// The same .cu file that nvcc compiles for the GPU is compiled by g++ against
// kernels/cuda/device/compat.h with LOOM_CUDA_EMULATION defined. Every CUDA
// thread then runs as a fiber; all fibers of a block share one OS thread and
// switch only at block barriers and warp collectives, in an order chosen by a
// seeded scheduling policy. The emulator checks the synchronization protocol
// (divergent or missing barriers, warp collectives with inconsistent masks,
// deadlocks, shared-memory hazards around cp.async and ldmatrix) and fails the
// launch with the kernel, block, thread and source line.
//
//   emu::ScopedOptions opts({.policy = emu::Policy::kWarpSerial, .seed = 3});
//   absl::Status s = cuda_emu::LaunchGemm(...);  // runs every block, then returns
//
// It is a logic, layout and synchronization checker, not a performance model
// and not a model of the GPU's weak memory ordering between truly concurrent
// threads (see /shared/specs/cuda-emulation.md, section 9).
#ifndef LOOM_KERNELS_EMU_EMULATOR_H_
#define LOOM_KERNELS_EMU_EMULATOR_H_

#include <vector_types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace loom::emu {

// The order in which the fibers of a block run between two barriers. Each
// order exposes other hazards, so kernel tests run several.
enum class Policy : uint8_t {
  // A fresh random permutation of all threads after every block barrier:
  // catches cross-thread read-after-write and write-after-read within a phase.
  kThreadRandom,
  // Warps in random order, each running to its next block barrier before the
  // next warp starts (random lane order inside a warp): maximal drift between
  // warps, which exposes pipeline bugs that near-lockstep orders hide.
  kWarpSerial,
  // Thread 0, 1, 2, ... and the reverse: deterministic, for the emulator's own tests.
  kInOrder,
  kReverse,
};

const char* PolicyName(Policy p);

struct Options {
  Policy policy = Policy::kThreadRandom;
  uint64_t seed = 0;
  // Compute capability the launch limits are checked against (shared memory
  // per block: 163 KB on sm_80, 227 KB on sm_90).
  int sm = 90;
  // Abort the process on an emulator error instead of failing the launch
  // (useful under a debugger: the stack of the failing thread is intact).
  bool abort_on_error = false;
};

// The options of launches on this OS thread.
const Options& CurrentOptions();

// Sets the options for this OS thread until destruction.
class ScopedOptions {
 public:
  explicit ScopedOptions(const Options& options);
  ~ScopedOptions();
  ScopedOptions(const ScopedOptions&) = delete;
  ScopedOptions& operator=(const ScopedOptions&) = delete;

 private:
  Options saved_;
};

struct GridLaunch {
  std::string kernel;  // for messages
  dim3 grid;
  dim3 block;
  size_t dynamic_smem = 0;
  // The kernel's opt-in limit (SetMaxDynamicSharedMemory); 48 KiB by default.
  size_t max_dynamic_smem = 48 << 10;
};

// Runs `body` (which calls the kernel with its arguments) once per thread of
// every block, blocks one after another. Returns the first emulator error.
absl::Status RunGrid(const GridLaunch& launch, absl::FunctionRef<void()> body);

// The opt-in of cudaFuncSetAttribute(kernel, MaxDynamicSharedMemorySize, n).
void SetMaxDynamicSharedMemory(const void* kernel, size_t bytes);
size_t MaxDynamicSharedMemory(const void* kernel);

// Shared memory per block of the emulated device (Options::sm).
size_t SharedMemoryPerBlockLimit(int sm);
inline constexpr size_t kStaticSharedLimit = 48 << 10;

// Counters of the last RunGrid on this OS thread, for tests and cost reports.
struct LaunchStats {
  int64_t blocks = 0;
  int64_t threads = 0;
  int64_t barriers = 0;          // block barrier releases
  int64_t warp_collectives = 0;  // completed warp-level operations
  int64_t context_switches = 0;
  std::vector<std::string> warnings;  // e.g. cp.async groups never waited on
};
const LaunchStats& LastLaunchStats();

}  // namespace loom::emu

#endif  // LOOM_KERNELS_EMU_EMULATOR_H_
