#include "kernels/emu/ptx.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "kernels/emu/block.h"
#include "kernels/emu/device_runtime.h"
#include "kernels/emu/warp.h"

namespace loom::emu::device {
namespace {

using internal::Block;
using internal::CurrentBlock;
using internal::CurrentThread;
using internal::Fail;
using internal::Granule;
using internal::Site;

float Bf16Bits(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float F16Bits(uint16_t h) { return __half2float(__ushort_as_half(h)); }

uint16_t Lo(uint32_t r) { return uint16_t(r & 0xFFFF); }
uint16_t Hi(uint32_t r) { return uint16_t(r >> 16); }

// ---- mma.m16n8k16

struct MmaArgs {
  MmaType type;
  float* d;
  const uint32_t* a;
  const uint32_t* b;
  const float* c;
};

void MmaCompute(void* const* lane_args, uint32_t, int) {
  double A[16][16], B[16][8], C[16][8];
  const MmaType type = static_cast<MmaArgs*>(lane_args[0])->type;
  auto value = [&](uint16_t h) {
    return double(type == MmaType::kBF16 ? Bf16Bits(h) : F16Bits(h));
  };
  for (int lane = 0; lane < 32; ++lane) {
    const MmaArgs& m = *static_cast<MmaArgs*>(lane_args[lane]);
    if (m.type != type) Fail("mma: lanes disagree on the element type");
    const int g = lane >> 2, t = lane & 3;
    // A (row-major 16x16): reg0 = A[g][2t..], reg1 = A[g+8][2t..],
    // reg2 = A[g][2t+8..], reg3 = A[g+8][2t+8..]; low half = lower column.
    for (int r = 0; r < 4; ++r) {
      const int row = g + 8 * (r & 1), col = 2 * t + 8 * (r >> 1);
      A[row][col] = value(Lo(m.a[r]));
      A[row][col + 1] = value(Hi(m.a[r]));
    }
    // B (16x8, "col"): reg0 = B[2t..2t+1][g], reg1 = B[2t+8..2t+9][g].
    for (int r = 0; r < 2; ++r) {
      const int k = 2 * t + 8 * r;
      B[k][g] = value(Lo(m.b[r]));
      B[k + 1][g] = value(Hi(m.b[r]));
    }
    // C/D (16x8 f32): c0, c1 = row g cols 2t, 2t+1; c2, c3 = row g+8.
    for (int i = 0; i < 4; ++i) C[g + 8 * (i >> 1)][2 * t + (i & 1)] = m.c[i];
  }
  float D[16][8];
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) {
      double acc = C[i][j];
      for (int k = 0; k < 16; ++k) acc += A[i][k] * B[k][j];
      D[i][j] = float(acc);
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    const MmaArgs& m = *static_cast<MmaArgs*>(lane_args[lane]);
    const int g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; ++i) m.d[i] = D[g + 8 * (i >> 1)][2 * t + (i & 1)];
  }
}

// ---- ldmatrix

struct LdMatrixArgs {
  int num;
  bool trans;
  uint32_t* regs;
  const void* row;
  Site site;
};

// A read of shared memory through ldmatrix by `warp`: the bytes must not have
// an incomplete cp.async, and a cp.async completed by another warp must have
// been published by a barrier since.
void CheckRead(Block& b, const void* p, int warp, const Site& site) {
  Granule& g = b.GranuleAt(p);
  if (g.pending_thread >= 0) {
    const auto& t = b.threads[size_t(g.pending_thread)];
    Fail(absl::StrFormat(
        "ldmatrix at %s reads shared memory at offset %d while thread %s's cp.async into it "
        "(issued at %s) has not completed: the issuing thread must cp.async.wait_group it, and "
        "the block __syncthreads, before the read",
        site.ToString(), b.SharedOffset(p), internal::Dim3String(t.idx),
        g.pending_site.ToString()));
  }
  if (g.filled_warp >= 0 && g.filled_warp != warp && g.filled_phase == b.phase) {
    Fail(absl::StrFormat(
        "ldmatrix at %s (warp %d) reads shared memory at offset %d that warp %d's cp.async (%s) "
        "completed in this barrier phase: a __syncthreads is needed between the wait and the "
        "read",
        site.ToString(), warp, b.SharedOffset(p), g.filled_warp, g.filled_site.ToString()));
  }
  if (g.read_phase != b.phase) {
    g.read_warp = warp;
    g.read_phase = b.phase;
    g.read_site = site;
  } else if (g.read_warp != warp) {
    g.read_warp = -2;
  }
}

void LdMatrixCompute(void* const* lane_args, uint32_t, int) {
  Block& b = CurrentBlock();
  const int warp = CurrentThread().warp;
  const LdMatrixArgs& first = *static_cast<LdMatrixArgs*>(lane_args[0]);
  const int num = first.num;
  const bool trans = first.trans;
  uint16_t M[4][8][8];
  for (int lane = 0; lane < 32; ++lane) {
    const LdMatrixArgs& a = *static_cast<LdMatrixArgs*>(lane_args[lane]);
    if (a.num != num || a.trans != trans) {
      Fail(absl::StrFormat("ldmatrix at %s: lane %d runs x%d%s, lane 0 x%d%s", a.site.ToString(),
                           lane, a.num, a.trans ? ".trans" : "", num, trans ? ".trans" : ""));
    }
  }
  for (int m = 0; m < num; ++m) {
    for (int r = 0; r < 8; ++r) {
      const LdMatrixArgs& a = *static_cast<LdMatrixArgs*>(lane_args[8 * m + r]);
      if (reinterpret_cast<uintptr_t>(a.row) % 16 != 0) {
        Fail(absl::StrFormat("ldmatrix at %s: lane %d's row address %p is not 16-byte aligned",
                             a.site.ToString(), 8 * m + r, a.row));
      }
      if (!b.InShared(a.row, 16)) {
        Fail(
            absl::StrFormat("ldmatrix at %s: lane %d's row address %p is outside the block's "
                            "shared memory",
                            a.site.ToString(), 8 * m + r, a.row));
      }
      CheckRead(b, a.row, warp, a.site);
      std::memcpy(M[m][r], a.row, 16);
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    const LdMatrixArgs& a = *static_cast<LdMatrixArgs*>(lane_args[lane]);
    const int g = lane >> 2, t = lane & 3;
    for (int m = 0; m < num; ++m) {
      const uint16_t lo = trans ? M[m][2 * t][g] : M[m][g][2 * t];
      const uint16_t hi = trans ? M[m][2 * t + 1][g] : M[m][g][2 * t + 1];
      a.regs[m] = uint32_t(lo) | (uint32_t(hi) << 16);
    }
  }
}

void RetireGroup(Block& b, internal::ThreadState& t) {
  for (const internal::CpAsyncCopy& c : t.cp_groups.front()) {
    std::memcpy(c.dst, c.data, size_t(c.bytes));
    Granule& g = b.GranuleAt(c.dst);
    g.pending_thread = -1;
    g.filled_warp = t.warp;
    g.filled_phase = b.phase;
    g.filled_site = c.site;
  }
  t.cp_groups.pop_front();
}

}  // namespace

void Mma16816(MmaType type, float* d, const uint32_t* a, const uint32_t* b, const float* c,
              Loc loc) {
  MmaArgs args{type, d, a, b, c};
  internal::WarpCollective(internal::WarpOp::kMma, 0xFFFFFFFFu, 32, &args, &MmaCompute,
                           Site::From(loc));
}

void LdMatrix(int num, bool trans, uint32_t* regs, const void* row, Loc loc) {
  LdMatrixArgs args{num, trans, regs, row, Site::From(loc)};
  internal::WarpCollective(internal::WarpOp::kLdMatrix, 0xFFFFFFFFu, 32, &args, &LdMatrixCompute,
                           Site::From(loc));
}

void CpAsync(void* dst, const void* src, int cp_bytes, int src_bytes, Loc loc) {
  Block& b = CurrentBlock();
  internal::ThreadState& t = CurrentThread();
  const Site site = Site::From(loc);
  if (cp_bytes != 4 && cp_bytes != 8 && cp_bytes != 16) {
    Fail(absl::StrFormat("cp.async at %s: size %d is not 4, 8 or 16", site.ToString(), cp_bytes));
  }
  if (src_bytes < 0 || src_bytes > cp_bytes) {
    Fail(absl::StrFormat("cp.async at %s: src-size %d outside [0, %d]", site.ToString(), src_bytes,
                         cp_bytes));
  }
  if (reinterpret_cast<uintptr_t>(dst) % cp_bytes || reinterpret_cast<uintptr_t>(src) % cp_bytes) {
    Fail(absl::StrFormat("cp.async at %s: dst %p and src %p must be %d-byte aligned",
                         site.ToString(), dst, src, cp_bytes));
  }
  if (!b.InShared(dst, size_t(cp_bytes))) {
    Fail(absl::StrFormat("cp.async at %s: destination %p is outside the block's shared memory",
                         site.ToString(), dst));
  }
  Granule& g = b.GranuleAt(dst);
  if (g.read_phase == b.phase && g.read_warp != t.warp) {
    Fail(absl::StrFormat(
        "cp.async at %s overwrites shared memory at offset %d that %s read through ldmatrix (%s) "
        "in this barrier phase: a __syncthreads is needed between the last read of a stage and "
        "its refill",
        site.ToString(), b.SharedOffset(dst),
        g.read_warp == -2 ? std::string("several warps") : absl::StrCat("warp ", g.read_warp),
        g.read_site.ToString()));
  }
  if (cp_bytes == 16 && g.pending_thread >= 0 && g.pending_thread != t.linear) {
    Fail(
        absl::StrFormat("cp.async at %s: thread %d has an incomplete cp.async (%s) into the "
                        "same shared memory",
                        site.ToString(), g.pending_thread, g.pending_site.ToString()));
  }
  internal::CpAsyncCopy c{static_cast<uint8_t*>(dst), cp_bytes, {}, site};
  std::memset(c.data, 0, sizeof(c.data));  // the zero fill past src_bytes
  if (src_bytes > 0) std::memcpy(c.data, src, size_t(src_bytes));
  std::memset(dst, 0xFF, size_t(cp_bytes));
  g.pending_thread = t.linear;
  g.pending_site = site;
  t.cp_uncommitted.push_back(c);
}

void CpAsyncCommit() {
  internal::ThreadState& t = CurrentThread();
  t.cp_groups.push_back(std::move(t.cp_uncommitted));
  t.cp_uncommitted.clear();
}

void CpAsyncWait(int n, Loc loc) {
  if (n < 0) Fail(absl::StrFormat("cp.async.wait_group %d at %s", n, Site::From(loc).ToString()));
  Block& b = CurrentBlock();
  internal::ThreadState& t = CurrentThread();
  while (int(t.cp_groups.size()) > n) RetireGroup(b, t);
}

}  // namespace loom::emu::device
