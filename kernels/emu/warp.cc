#include "kernels/emu/warp.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "kernels/emu/device_runtime.h"

namespace loom::emu {
namespace internal {
namespace {

std::string Describe(const WarpArrival& a) {
  return absl::StrFormat("%s (mask 0x%08x, width %d) at %s", WarpOpName(a.op), a.mask, a.width,
                         a.site.ToString());
}

}  // namespace

void WarpCollective(WarpOp op, uint32_t mask, int width, void* args, WarpCompute compute,
                    Site site) {
  Block& b = CurrentBlock();
  ThreadState& t = *b.current;
  WarpState& w = b.warps[t.warp];
  const uint32_t me = 1u << t.lane;
  const WarpArrival mine{op, mask, width, site, args};
  if (!(mask & me)) {
    Fail(absl::StrFormat("%s: the calling lane %d is not in its mask", Describe(mine), t.lane));
  }
  if (mask & ~w.present) {
    Fail(absl::StrFormat("%s: the mask names lanes 0x%08x that do not exist (block of %d threads)",
                         Describe(mine), mask & ~w.present, b.threads.size()));
  }
  if (mask & w.exited) {
    Fail(absl::StrFormat("%s: the mask names lanes 0x%08x that have exited", Describe(mine),
                         mask & w.exited));
  }
  // Every pending lane that this call names, or that names this lane, must be
  // at the same collective.
  for (int l = 0; l < 32; ++l) {
    if (!(w.waiting >> l & 1)) continue;
    const WarpArrival& other = w.arrivals[l];
    if (!((mask >> l & 1) || (other.mask & me))) continue;
    if (other.op != op || other.mask != mask || other.width != width) {
      Fail(absl::StrFormat("divergent warp collectives: this lane is at %s while lane %d is at %s",
                           Describe(mine), l, Describe(other)));
    }
  }
  w.arrivals[t.lane] = mine;
  w.waiting |= me;
  if ((w.waiting & mask) != mask) {
    Suspend(WaitState::kWarp, site);
    return;  // completed by the last lane to arrive
  }
  void* lane_args[32] = {};
  for (int l = 0; l < 32; ++l) {
    if (mask >> l & 1) lane_args[l] = w.arrivals[l].args;
  }
  compute(lane_args, mask, width);
  w.waiting &= ~mask;
  ++b.stats->warp_collectives;
  for (int l = 0; l < 32; ++l) {
    if ((mask >> l & 1) && l != t.lane)
      b.threads[size_t(t.warp * 32 + l)].state = WaitState::kReady;
  }
}

namespace {

struct ShflArgs {
  device::ShflKind kind;
  uint64_t value;
  int arg;
  uint64_t result;
};

// CUDA's shuffle rules for width w (a power of two) and segment start
// s = lane & ~(w - 1); a source lane outside the mask is an error (its value
// would be undefined on the GPU).
void ShflCompute(void* const* lane_args, uint32_t mask, int width) {
  for (int l = 0; l < 32; ++l) {
    if (!(mask >> l & 1)) continue;
    ShflArgs& a = *static_cast<ShflArgs*>(lane_args[l]);
    const int s = l & ~(width - 1);
    int src = l;
    switch (a.kind) {
      case device::ShflKind::kIdx:
        src = s + (((a.arg % width) + width) % width);
        break;
      case device::ShflKind::kUp:
        src = l - a.arg >= s ? l - a.arg : l;
        break;
      case device::ShflKind::kDown:
        src = l + a.arg < s + width ? l + a.arg : l;
        break;
      case device::ShflKind::kXor:
        src = (l ^ a.arg) < s + width ? (l ^ a.arg) : l;
        break;
    }
    if (src < 0 || src >= 32 || !(mask >> src & 1)) {
      Fail(absl::StrFormat("lane %d reads lane %d, which is not in the shuffle's mask 0x%08x", l,
                           src, mask));
    }
    a.result = static_cast<ShflArgs*>(lane_args[src])->value;
  }
}

struct VoteArgs {
  int pred;
  unsigned result;
};

template <int kKind>
void VoteCompute(void* const* lane_args, uint32_t mask, int) {
  unsigned ballot = 0;
  for (int l = 0; l < 32; ++l) {
    if ((mask >> l & 1) && static_cast<VoteArgs*>(lane_args[l])->pred != 0) ballot |= 1u << l;
  }
  const unsigned r = kKind == 0   ? ballot
                     : kKind == 1 ? unsigned(ballot != 0)
                                  : unsigned(ballot == mask);
  for (int l = 0; l < 32; ++l) {
    if (mask >> l & 1) static_cast<VoteArgs*>(lane_args[l])->result = r;
  }
}

void NoCompute(void* const*, uint32_t, int) {}

WarpOp ShflOp(device::ShflKind k) {
  switch (k) {
    case device::ShflKind::kIdx:
      return WarpOp::kShfl;
    case device::ShflKind::kUp:
      return WarpOp::kShflUp;
    case device::ShflKind::kDown:
      return WarpOp::kShflDown;
    case device::ShflKind::kXor:
      return WarpOp::kShflXor;
  }
  return WarpOp::kShfl;
}

}  // namespace
}  // namespace internal

namespace device {

using internal::CurrentBlock;
using internal::Site;

const uint3& ThreadIdx() { return internal::CurrentThread().idx; }
const uint3& BlockIdx() { return CurrentBlock().block_idx; }
const uint3& BlockDim() { return CurrentBlock().block_dim; }
const uint3& GridDim() { return CurrentBlock().grid_dim; }

void SyncThreads(Loc loc) { internal::Suspend(internal::WaitState::kBarrier, Site::From(loc)); }

void SyncWarp(unsigned mask, Loc loc) {
  internal::WarpCollective(internal::WarpOp::kSyncWarp, mask, 32, nullptr, &internal::NoCompute,
                           Site::From(loc));
}

uint64_t Shfl(ShflKind kind, unsigned mask, uint64_t bits, int arg, int width, Loc loc) {
  if (width <= 0 || width > 32 || (width & (width - 1)) != 0) {
    internal::Fail(absl::StrFormat("shuffle width %d at %s is not a power of two in [1, 32]", width,
                                   Site::From(loc).ToString()));
  }
  internal::ShflArgs a{kind, bits, arg, 0};
  internal::WarpCollective(internal::ShflOp(kind), mask, width, &a, &internal::ShflCompute,
                           Site::From(loc));
  return a.result;
}

unsigned Vote(int kind, unsigned mask, int pred, Loc loc) {
  internal::VoteArgs a{pred, 0};
  const internal::WarpOp op = kind == 0   ? internal::WarpOp::kBallot
                              : kind == 1 ? internal::WarpOp::kAny
                                          : internal::WarpOp::kAll;
  internal::WarpCompute compute = kind == 0   ? &internal::VoteCompute<0>
                                  : kind == 1 ? &internal::VoteCompute<1>
                                              : &internal::VoteCompute<2>;
  internal::WarpCollective(op, mask, 32, &a, compute, Site::From(loc));
  return a.result;
}

void* StaticSharedSlot::Get(size_t bytes, size_t align, Loc loc) {
  internal::Block& b = CurrentBlock();
  if (block_serial == b.serial) return ptr;
  align = align < 16 ? 16 : align;
  const size_t start = (b.smem_static_used + align - 1) / align * align;
  if (start + bytes > kStaticSharedLimit) {
    internal::Fail(absl::StrFormat(
        "static shared memory at %s: %d more bytes exceed the 48 KiB of static shared memory "
        "(%d already used); put large tiles in dynamic shared memory",
        Site::From(loc).ToString(), bytes, b.smem_static_used));
  }
  b.smem_static_used = start + bytes;
  block_serial = b.serial;
  ptr = b.smem + start;
  return ptr;
}

void* DynamicSharedBase() {
  internal::Block& b = CurrentBlock();
  return b.smem + kStaticSharedLimit;
}

}  // namespace device
}  // namespace loom::emu
