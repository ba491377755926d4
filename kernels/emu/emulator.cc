// The block scheduler: runs one fiber per CUDA thread and releases block
// barriers, detecting divergent barriers and deadlocks.
#include "kernels/emu/emulator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "kernels/emu/block.h"

namespace loom::emu {
namespace internal {
namespace {

thread_local Block* current_block = nullptr;
thread_local Options current_options;
thread_local LaunchStats last_stats;
thread_local StackPool* stack_pool = nullptr;
std::atomic<uint64_t> next_block_serial{1};

std::mutex max_smem_mu;
std::map<const void*, size_t>& MaxSmemRegistry() {
  static auto* m = new std::map<const void*, size_t>();
  return *m;
}

// "0-31, 40, 64-127": compact thread lists for messages.
std::string Ranges(const std::vector<int>& ids) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    parts.push_back(i == j ? absl::StrCat(ids[i]) : absl::StrCat(ids[i], "-", ids[j]));
    i = j + 1;
  }
  return absl::StrJoin(parts, ", ");
}

// Thrown by Fail() and caught at the bottom of the failing fiber, so that its
// stack unwinds (no leaked temporaries) before the launch is abandoned.
struct KernelAbort {};

// Exited threads release barriers (PTX semantics) but must not be named by a
// pending warp collective.
void OnExit(ThreadState& t, Block& b) {
  WarpState& w = b.warps[t.warp];
  w.exited |= 1u << t.lane;
  for (int l = 0; l < 32; ++l) {
    if ((w.waiting >> l & 1) && (w.arrivals[l].mask >> t.lane & 1)) {
      Fail(absl::StrFormat("exited while lane %d waits for it in %s (mask 0x%08x) at %s", l,
                           WarpOpName(w.arrivals[l].op), w.arrivals[l].mask,
                           w.arrivals[l].site.ToString()));
    }
  }
  bool pending_copies = !t.cp_uncommitted.empty();
  for (const auto& g : t.cp_groups) pending_copies |= !g.empty();
  if (pending_copies && b.stats->warnings.size() < 8) {
    b.stats->warnings.push_back(absl::StrFormat(
        "kernel %s, block %s, thread %s: exited with cp.async copies never waited on",
        b.launch->kernel, Dim3String(b.block_idx), Dim3String(t.idx)));
  }
}

void ThreadMain(void* arg) {
  ThreadState& t = *static_cast<ThreadState*>(arg);
  Block& b = *current_block;
  try {
    (*b.body)();
    OnExit(t, b);
  } catch (const KernelAbort&) {
    t.state = WaitState::kFailed;
    return;
  }
  t.state = WaitState::kExited;
}

uint64_t SplitMix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Decides the order in which ready fibers run between barriers.
class Scheduler {
 public:
  Scheduler(Block& b, const Options& o) : b_(b), policy_(o.policy) {
    const uint64_t block_linear =
        (uint64_t(b.block_idx.z) * b.grid_dim.y + b.block_idx.y) * b.grid_dim.x + b.block_idx.x;
    rng_.seed(SplitMix(o.seed ^ SplitMix(block_linear + 1)));
    order_.resize(b.threads.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = int(i);
    warp_order_.resize(b.warps.size());
    for (size_t i = 0; i < warp_order_.size(); ++i) warp_order_[i] = int(i);
    Permute();
  }

  // Runs fibers until none is ready. False if the launch failed.
  bool RunPhase() {
    if (policy_ == Policy::kWarpSerial) {
      for (int w : warp_order_) {
        for (bool progress = true; progress;) {
          progress = false;
          for (int lane : lane_order_) {
            const int i = w * 32 + lane;
            if (i >= int(b_.threads.size())) continue;
            if (!Step(i, &progress)) return false;
          }
        }
      }
      return true;
    }
    for (bool progress = true; progress;) {
      progress = false;
      for (int i : order_) {
        if (!Step(i, &progress)) return false;
      }
    }
    return true;
  }

  void Permute() {
    switch (policy_) {
      case Policy::kInOrder:
        break;
      case Policy::kReverse:
        std::reverse(order_.begin(), order_.end());
        break;
      case Policy::kThreadRandom:
        std::shuffle(order_.begin(), order_.end(), rng_);
        break;
      case Policy::kWarpSerial:
        std::shuffle(warp_order_.begin(), warp_order_.end(), rng_);
        lane_order_.resize(32);
        for (int l = 0; l < 32; ++l) lane_order_[l] = l;
        std::shuffle(lane_order_.begin(), lane_order_.end(), rng_);
        break;
    }
  }

 private:
  bool Step(int i, bool* progress) {
    ThreadState& t = b_.threads[i];
    if (t.state != WaitState::kReady) return true;
    b_.current = &t;
    ++b_.stats->context_switches;
    t.fiber.Resume();
    b_.current = nullptr;
    *progress = true;
    return !b_.failed;
  }

  Block& b_;
  Policy policy_;
  std::mt19937_64 rng_;
  std::vector<int> order_, warp_order_, lane_order_;
};

// All fibers are blocked: release the barrier, or report why it cannot be.
bool ReleaseOrDiagnose(Block& b) {
  // Group the blocked threads by where they wait.
  struct Group {
    WaitState state;
    Site site;
    int64_t count;
    std::vector<int> ids;
  };
  std::vector<Group> groups;
  int live = 0;
  for (const ThreadState& t : b.threads) {
    if (t.state == WaitState::kExited) continue;
    ++live;
    auto it = std::find_if(groups.begin(), groups.end(), [&](const Group& g) {
      return g.state == t.state && g.site == t.wait_site &&
             (t.state != WaitState::kBarrier || g.count == t.barriers_passed);
    });
    if (it == groups.end()) {
      groups.push_back({t.state, t.wait_site, t.barriers_passed, {}});
      it = groups.end() - 1;
    }
    it->ids.push_back(t.linear);
  }
  if (live == 0) return true;
  const bool all_barrier = std::all_of(
      groups.begin(), groups.end(), [](const Group& g) { return g.state == WaitState::kBarrier; });
  if (all_barrier && groups.size() == 1) {
    for (ThreadState& t : b.threads) {
      if (t.state == WaitState::kBarrier) {
        t.state = WaitState::kReady;
        ++t.barriers_passed;
      }
    }
    ++b.phase;
    ++b.stats->barriers;
    return true;
  }
  std::vector<std::string> lines;
  for (const Group& g : groups) {
    lines.push_back(absl::StrFormat(
        "%d thread(s) [%s] at %s %s", g.ids.size(), Ranges(g.ids),
        g.state == WaitState::kBarrier ? "__syncthreads" : "a warp collective", g.site.ToString()));
    if (g.state == WaitState::kBarrier) lines.back() += absl::StrCat(" (barrier #", g.count, ")");
  }
  b.failed = true;
  b.error =
      absl::StrFormat("kernel %s, block %s: %s:\n  %s", b.launch->kernel, Dim3String(b.block_idx),
                      all_barrier ? "divergent __syncthreads (threads wait at different "
                                    "barriers)"
                                  : "deadlock (threads wait for each other at different "
                                    "synchronization points)",
                      absl::StrJoin(lines, "\n  "));
  return false;
}

absl::Status RunBlock(Block& b, const Options& options) {
  const int n = int(b.threads.size());
  for (int i = 0; i < n; ++i) {
    ThreadState& t = b.threads[i];
    t.state = WaitState::kReady;
    t.barriers_passed = 0;
    t.cp_uncommitted.clear();
    t.cp_groups.clear();
    t.fiber.Start(stack_pool->Get(size_t(i)), &ThreadMain, &t);
  }
  for (WarpState& w : b.warps) w.exited = w.waiting = 0;
  b.phase = 0;
  b.smem_static_used = 0;
  std::memset(b.smem, 0xFF, b.smem_bytes());  // uninitialized reads show up as NaN
  for (uint32_t g : b.touched_granules) b.granules[g] = Granule();
  b.touched_granules.clear();

  Scheduler scheduler(b, options);
  for (;;) {
    if (!scheduler.RunPhase()) break;
    const bool all_exited = std::all_of(b.threads.begin(), b.threads.end(), [](const auto& t) {
      return t.state == WaitState::kExited;
    });
    if (all_exited) return absl::OkStatus();
    if (!ReleaseOrDiagnose(b)) break;
    scheduler.Permute();
  }
  if (options.abort_on_error) {
    std::fprintf(stderr, "emu: %s\n", b.error.c_str());
    std::abort();
  }
  return absl::InternalError(b.error);
}

}  // namespace

std::string Site::ToString() const { return absl::StrCat(file, ":", line, ":", column); }

std::string Dim3String(const uint3& d) { return absl::StrCat("(", d.x, ", ", d.y, ", ", d.z, ")"); }

Granule& Block::GranuleAt(const void* p) {
  const size_t g = size_t(static_cast<const uint8_t*>(p) - smem) / 16;
  Granule& r = granules[g];
  if (r.pending_thread == -1 && r.filled_warp == -1 && r.read_warp == -1) {
    touched_granules.push_back(uint32_t(g));
  }
  return r;
}

const char* WarpOpName(WarpOp op) {
  switch (op) {
    case WarpOp::kSyncWarp:
      return "__syncwarp";
    case WarpOp::kShfl:
      return "__shfl_sync";
    case WarpOp::kShflUp:
      return "__shfl_up_sync";
    case WarpOp::kShflDown:
      return "__shfl_down_sync";
    case WarpOp::kShflXor:
      return "__shfl_xor_sync";
    case WarpOp::kBallot:
      return "__ballot_sync";
    case WarpOp::kAny:
      return "__any_sync";
    case WarpOp::kAll:
      return "__all_sync";
    case WarpOp::kMatchAny:
      return "__match_any_sync";
    case WarpOp::kLdMatrix:
      return "ldmatrix";
    case WarpOp::kMma:
      return "mma.sync";
  }
  return "?";
}

Block& CurrentBlock() {
  if (current_block == nullptr || current_block->current == nullptr) {
    std::fprintf(stderr,
                 "emu: a device function (threadIdx, __syncthreads, ...) was called outside an "
                 "emulated kernel launch\n");
    std::abort();
  }
  return *current_block;
}

ThreadState& CurrentThread() { return *CurrentBlock().current; }

bool InKernel() { return current_block != nullptr && current_block->current != nullptr; }

void Fail(const std::string& message) {
  Block& b = CurrentBlock();
  ThreadState& t = *b.current;
  b.failed = true;
  b.error =
      absl::StrFormat("kernel %s, block %s, thread %s (warp %d, lane %d): %s", b.launch->kernel,
                      Dim3String(b.block_idx), Dim3String(t.idx), t.warp, t.lane, message);
  if (current_options.abort_on_error) {
    std::fprintf(stderr, "emu: %s\n", b.error.c_str());
    std::abort();  // here, so that a debugger sees the failing thread's stack
  }
  throw KernelAbort{};
}

void Suspend(WaitState state, Site site) {
  ThreadState& t = CurrentThread();
  t.state = state;
  t.wait_site = site;
  Fiber::Yield();
}

}  // namespace internal

using internal::Block;

const char* PolicyName(Policy p) {
  switch (p) {
    case Policy::kThreadRandom:
      return "thread-random";
    case Policy::kWarpSerial:
      return "warp-serial";
    case Policy::kInOrder:
      return "in-order";
    case Policy::kReverse:
      return "reverse";
  }
  return "?";
}

const Options& CurrentOptions() { return internal::current_options; }

ScopedOptions::ScopedOptions(const Options& options) : saved_(internal::current_options) {
  internal::current_options = options;
}
ScopedOptions::~ScopedOptions() { internal::current_options = saved_; }

size_t SharedMemoryPerBlockLimit(int sm) {
  if (sm >= 90) return 232448;              // 227 KiB
  if (sm == 80 || sm == 87) return 166912;  // 163 KiB
  if (sm >= 86) return 101376;              // 99 KiB
  return 49152;
}

void SetMaxDynamicSharedMemory(const void* kernel, size_t bytes) {
  std::lock_guard<std::mutex> lock(internal::max_smem_mu);
  internal::MaxSmemRegistry()[kernel] = bytes;
}

size_t MaxDynamicSharedMemory(const void* kernel) {
  std::lock_guard<std::mutex> lock(internal::max_smem_mu);
  auto it = internal::MaxSmemRegistry().find(kernel);
  return it == internal::MaxSmemRegistry().end() ? size_t(48 << 10) : it->second;
}

const LaunchStats& LastLaunchStats() { return internal::last_stats; }

absl::Status RunGrid(const GridLaunch& launch, absl::FunctionRef<void()> body) {
  using internal::current_block;
  const Options& options = internal::current_options;
  internal::last_stats = LaunchStats();
  const dim3 g = launch.grid, bd = launch.block;
  const int64_t threads = int64_t(bd.x) * bd.y * bd.z;
  const std::string where =
      absl::StrCat("launch of ", launch.kernel, " (grid ", internal::Dim3String({g.x, g.y, g.z}),
                   ", block ", internal::Dim3String({bd.x, bd.y, bd.z}), ")");
  if (current_block != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": kernels cannot be launched from inside a kernel"));
  }
  if (threads <= 0 || threads > 1024 || bd.z > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": a block has 1..1024 threads (z <= 64); this one has ", threads));
  }
  if (g.x == 0 || g.y == 0 || g.z == 0 || g.y > 65535 || g.z > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": grid dims must be positive, with y and z at most 65535"));
  }
  if (launch.dynamic_smem > launch.max_dynamic_smem) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": ", launch.dynamic_smem, " bytes of dynamic shared memory exceed the kernel's ",
        "limit of ", launch.max_dynamic_smem,
        " (above 48 KiB a kernel must opt in with SetMaxDynamicSharedMemory, which is "
        "cudaFuncSetAttribute(MaxDynamicSharedMemorySize) on the GPU)"));
  }
  const size_t limit = SharedMemoryPerBlockLimit(options.sm);
  if (launch.dynamic_smem > limit) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", launch.dynamic_smem,
                                                   " bytes of dynamic shared memory exceed the ",
                                                   limit, " per block of sm_", options.sm));
  }
  if (internal::stack_pool == nullptr) internal::stack_pool = new StackPool();

  Block b;
  b.launch = &launch;
  b.block_dim = {bd.x, bd.y, bd.z};
  b.grid_dim = {g.x, g.y, g.z};
  b.body = &body;
  b.stats = &internal::last_stats;
  b.threads.resize(size_t(threads));
  for (int64_t i = 0; i < threads; ++i) {
    internal::ThreadState& t = b.threads[size_t(i)];
    t.idx = {uint32_t(i % bd.x), uint32_t(i / bd.x % bd.y), uint32_t(i / (int64_t(bd.x) * bd.y))};
    t.linear = int(i);
    t.warp = int(i / 32);
    t.lane = int(i % 32);
  }
  b.warps.resize(size_t((threads + 31) / 32));
  for (size_t w = 0; w < b.warps.size(); ++w) {
    const int64_t lanes = std::min<int64_t>(32, threads - int64_t(w) * 32);
    b.warps[w].present = lanes == 32 ? 0xFFFFFFFFu : ((1u << lanes) - 1);
  }
  b.smem_dynamic = launch.dynamic_smem;
  std::unique_ptr<uint8_t[]> smem(new uint8_t[b.smem_bytes()]);
  b.smem = smem.get();
  b.granules.resize(b.smem_bytes() / 16 + 1);

  current_block = &b;
  absl::Status status;
  for (uint32_t z = 0; z < g.z && status.ok(); ++z) {
    for (uint32_t y = 0; y < g.y && status.ok(); ++y) {
      for (uint32_t x = 0; x < g.x && status.ok(); ++x) {
        b.block_idx = {x, y, z};
        b.serial = internal::next_block_serial.fetch_add(1);
        status = internal::RunBlock(b, options);
        ++internal::last_stats.blocks;
        internal::last_stats.threads += threads;
      }
    }
  }
  current_block = nullptr;
  return status;
}

}  // namespace loom::emu
