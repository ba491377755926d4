// Internal: the state of the block being emulated on this OS thread, shared
// by the scheduler (emulator.cc), warp collectives (warp.cc) and the PTX
// emulation (ptx.cc). Kernel code never includes this; it sees
// kernels/emu/device_runtime.h.
#ifndef LOOM_KERNELS_EMU_BLOCK_H_
#define LOOM_KERNELS_EMU_BLOCK_H_

#include <vector_types.h>

#include <cstdint>
#include <deque>
#include <source_location>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "kernels/emu/emulator.h"
#include "kernels/emu/fiber.h"

namespace loom::emu::internal {

// A source position: where a barrier, collective or copy was called.
struct Site {
  const char* file = "?";
  uint32_t line = 0;
  uint32_t column = 0;

  static Site From(const std::source_location& loc) {
    return {loc.file_name(), loc.line(), loc.column()};
  }
  std::string ToString() const;  // "file:line:column"
  friend bool operator==(const Site& a, const Site& b) {
    return a.line == b.line && a.column == b.column &&
           (a.file == b.file || std::string_view(a.file) == b.file);
  }
};

enum class WaitState : uint8_t { kReady, kBarrier, kWarp, kExited, kFailed };

// What a warp collective is; lanes meeting in one must agree on it.
enum class WarpOp : uint8_t {
  kSyncWarp,
  kShfl,
  kShflUp,
  kShflDown,
  kShflXor,
  kBallot,
  kAny,
  kAll,
  kMatchAny,
  kLdMatrix,
  kMma,
};
const char* WarpOpName(WarpOp op);

struct CpAsyncCopy {
  uint8_t* dst;
  int bytes;
  uint8_t data[16];
  Site site;
};

struct ThreadState {
  uint3 idx;
  int linear = 0;
  int warp = 0;
  int lane = 0;
  Fiber fiber;
  WaitState state = WaitState::kReady;
  Site wait_site;  // barrier or collective being waited on
  int64_t barriers_passed = 0;
  std::vector<CpAsyncCopy> cp_uncommitted;
  std::deque<std::vector<CpAsyncCopy>> cp_groups;
};

// One lane's side of a pending warp collective. `args` points into the
// waiting lane's own (suspended) stack.
struct WarpArrival {
  WarpOp op;
  uint32_t mask;
  int width;
  Site site;
  void* args;
};

// Computes a completed collective: lane_args[l] is lane l's args for every
// lane l in mask (nullptr otherwise).
using WarpCompute = void (*)(void* const* lane_args, uint32_t mask, int width);

struct WarpState {
  uint32_t present = 0;  // lanes that exist (the last warp may be partial)
  uint32_t exited = 0;
  uint32_t waiting = 0;
  WarpArrival arrivals[32];
};

// Per 16-byte granule of shared memory: the thread with an incomplete
// cp.async into it, the warp whose cp.async last completed there, and the
// warp(s) that last read it through ldmatrix, each with the barrier phase it
// happened in. ptx.cc uses this to report reads before a cp.async completes
// or before the barrier that publishes it, and refills of a stage that
// another warp may still be reading.
struct Granule {
  int32_t pending_thread = -1;
  Site pending_site;
  int32_t filled_warp = -1;
  int64_t filled_phase = -1;
  Site filled_site;
  int32_t read_warp = -1;  // -2: several warps
  int64_t read_phase = -1;
  Site read_site;
};

struct Block {
  const GridLaunch* launch = nullptr;
  uint3 block_idx{0, 0, 0};
  uint3 block_dim{1, 1, 1};
  uint3 grid_dim{1, 1, 1};
  uint64_t serial = 0;  // unique per emulated block (static shared slots key on it)
  std::vector<ThreadState> threads;
  std::vector<WarpState> warps;
  ThreadState* current = nullptr;
  absl::FunctionRef<void()>* body = nullptr;

  // Shared memory: [static region | dynamic region], exactly sized so that
  // AddressSanitizer sees overruns of the dynamic region.
  uint8_t* smem = nullptr;
  size_t smem_static_used = 0;
  size_t smem_dynamic = 0;
  std::vector<Granule> granules;
  std::vector<uint32_t> touched_granules;

  int64_t phase = 0;  // number of block barriers released so far
  bool failed = false;
  std::string error;
  LaunchStats* stats = nullptr;

  size_t smem_bytes() const { return kStaticSharedLimit + smem_dynamic; }
  bool InShared(const void* p, size_t bytes) const {
    const uint8_t* q = static_cast<const uint8_t*>(p);
    return q >= smem && q + bytes <= smem + smem_bytes();
  }
  size_t SharedOffset(const void* p) const { return size_t(static_cast<const uint8_t*>(p) - smem); }
  Granule& GranuleAt(const void* p);
};

// The block running on this OS thread; aborts if called outside a launch.
Block& CurrentBlock();
ThreadState& CurrentThread();
bool InKernel();

// Fails the launch from inside a fiber: records "kernel K, block (..),
// thread (..): message" and never returns to the caller.
[[noreturn]] void Fail(const std::string& message);
// Suspends the current fiber until the scheduler makes it ready again.
void Suspend(WaitState state, Site site);

// "(x, y, z)".
std::string Dim3String(const uint3& d);

}  // namespace loom::emu::internal

#endif  // LOOM_KERNELS_EMU_BLOCK_H_
