// Deliberately broken kernels: each bug must be reported, either as an
// emulator error naming the kernel, thread and source line, or (for races
// the emulator cannot see directly) as wrong results under the scheduling
// policies; each fixed twin must pass.
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/device/compat.h"

namespace loom::cuda_emu {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;

constexpr uint64_t kSeeds = 8;

// ---- Missing barrier, read after write: thread t reads what t-1 wrote.
template <bool kBarrier>
__global__ void ShiftLeft(const int* in, int* out) {
  LOOM_SHARED(int, s, 128);
  const int t = threadIdx.x;
  s[t] = in[t];
  if (kBarrier) __syncthreads();
  out[t] = s[(t + 127) % 128];
}

template <bool kBarrier>
int ShiftMismatches(emu::Policy p, uint64_t seed) {
  emu::ScopedOptions o({.policy = p, .seed = seed});
  std::vector<int> in(128), out(128);
  for (int i = 0; i < 128; ++i) in[i] = i;
  EXPECT_TRUE(
      Launch<&ShiftLeft<kBarrier>>({.grid = dim3(1), .block = dim3(128)}, in.data(), out.data())
          .ok());
  int bad = 0;
  for (int i = 0; i < 128; ++i) bad += out[i] != in[(i + 127) % 128];
  return bad;
}

TEST(BrokenKernelsTest, MissingBarrierReadAfterWriteGivesWrongResults) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    EXPECT_GT(ShiftMismatches<false>(emu::Policy::kThreadRandom, seed), 0) << seed;
    EXPECT_EQ(ShiftMismatches<true>(emu::Policy::kThreadRandom, seed), 0) << seed;
    EXPECT_EQ(ShiftMismatches<true>(emu::Policy::kWarpSerial, seed), 0) << seed;
  }
}

// ---- Missing trailing barrier, write after read: a buffer reused by the next
// iteration while other threads may still be reading the previous one.
template <bool kBarrier>
__global__ void RunningSums(const int* in, int* out, int iters) {
  LOOM_SHARED(int, s, 64);
  const int t = threadIdx.x;
  for (int it = 0; it < iters; ++it) {
    s[t] = in[it * 64 + t];
    __syncthreads();
    out[it * 64 + t] = s[t] + s[63 - t];
    if (kBarrier) __syncthreads();
  }
}

template <bool kBarrier>
int RunningSumMismatches(emu::Policy p, uint64_t seed) {
  emu::ScopedOptions o({.policy = p, .seed = seed});
  const int iters = 4;
  std::vector<int> in(64 * iters), out(64 * iters);
  for (size_t i = 0; i < in.size(); ++i) in[i] = int(i * 3 + 1);
  EXPECT_TRUE(Launch<&RunningSums<kBarrier>>({.grid = dim3(1), .block = dim3(64)}, in.data(),
                                             out.data(), iters)
                  .ok());
  int bad = 0;
  for (int it = 0; it < iters; ++it) {
    for (int t = 0; t < 64; ++t) bad += out[it * 64 + t] != in[it * 64 + t] + in[it * 64 + 63 - t];
  }
  return bad;
}

TEST(BrokenKernelsTest, MissingBarrierWriteAfterReadGivesWrongResults) {
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    EXPECT_GT(RunningSumMismatches<false>(emu::Policy::kThreadRandom, seed), 0) << seed;
    EXPECT_GT(RunningSumMismatches<false>(emu::Policy::kWarpSerial, seed), 0) << seed;
    EXPECT_EQ(RunningSumMismatches<true>(emu::Policy::kThreadRandom, seed), 0) << seed;
    EXPECT_EQ(RunningSumMismatches<true>(emu::Policy::kWarpSerial, seed), 0) << seed;
  }
}

// ---- Divergent barrier: two warps reach different __syncthreads.
constexpr int kFirstBarrierLine = __LINE__ + 4;
constexpr int kSecondBarrierLine = __LINE__ + 5;
__global__ void DivergentBarrier(int* out) {
  if (threadIdx.x < 32) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

TEST(BrokenKernelsTest, DivergentBarrierIsReportedWithBothSites) {
  std::vector<int> out(64);
  absl::Status s = Launch<&DivergentBarrier>({.grid = dim3(1), .block = dim3(64)}, out.data());
  EXPECT_THAT(std::string(s.message()),
              AllOf(HasSubstr("DivergentBarrier"), HasSubstr("block (0, 0, 0)"),
                    HasSubstr("divergent __syncthreads"), HasSubstr("32 thread(s) [0-31]"),
                    HasSubstr("[32-63]"),
                    HasSubstr(absl::StrCat("broken_kernels_test.cc:", kFirstBarrierLine)),
                    HasSubstr(absl::StrCat("broken_kernels_test.cc:", kSecondBarrierLine))));
}

// A barrier skipped by some threads that stay alive: the others wait at a
// barrier the first group never reaches.
__global__ void BarrierInsideBranch(const int* flags, int* out) {
  if (flags[threadIdx.x]) __syncthreads();
  __syncthreads();
  out[threadIdx.x] = 1;
}

TEST(BrokenKernelsTest, ConditionalBarrierIsReported) {
  std::vector<int> flags(64, 1), out(64);
  flags[17] = 0;
  absl::Status s =
      Launch<&BarrierInsideBranch>({.grid = dim3(1), .block = dim3(64)}, flags.data(), out.data());
  EXPECT_THAT(std::string(s.message()),
              AllOf(HasSubstr("divergent __syncthreads"), HasSubstr("1 thread(s) [17]"),
                    HasSubstr("[0-16, 18-63]")));
}

// ---- A warp collective waiting for lanes that sit at a block barrier.
__global__ void ShuffleVersusBarrier(int* out) {
  int v = threadIdx.x;
  if (threadIdx.x % 32 == 0) {
    v = __shfl_xor_sync(0xFFFFFFFFu, v, 1);
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = v;
}

TEST(BrokenKernelsTest, DeadlockListsEveryWaitSite) {
  std::vector<int> out(64);
  absl::Status s = Launch<&ShuffleVersusBarrier>({.grid = dim3(1), .block = dim3(64)}, out.data());
  EXPECT_THAT(std::string(s.message()),
              AllOf(HasSubstr("deadlock"), HasSubstr("[0, 32] at a warp collective"),
                    HasSubstr("at __syncthreads")));
}

// ---- Lanes of one warp at different collectives under the same mask.
__global__ void DivergentShuffles(int* out) {
  int v = threadIdx.x;
  if (threadIdx.x < 16) {
    v = __shfl_xor_sync(0xFFFFFFFFu, v, 1);
  } else {
    v = __shfl_down_sync(0xFFFFFFFFu, v, 1);
  }
  out[threadIdx.x] = v;
}

TEST(BrokenKernelsTest, DivergentWarpCollectivesAreReported) {
  std::vector<int> out(32);
  absl::Status s = Launch<&DivergentShuffles>({.grid = dim3(1), .block = dim3(32)}, out.data());
  EXPECT_THAT(std::string(s.message()),
              AllOf(HasSubstr("divergent warp collectives"), HasSubstr("__shfl_xor_sync"),
                    HasSubstr("__shfl_down_sync")));
}

__global__ void ShuffleWithExitedLanes(int* out) {
  if (threadIdx.x >= 16) return;
  out[threadIdx.x] = __shfl_xor_sync(0xFFFFFFFFu, int(threadIdx.x), 1);
}

TEST(BrokenKernelsTest, FullMaskAfterLanesExitedIsReported) {
  for (emu::Policy p : {emu::Policy::kInOrder, emu::Policy::kReverse}) {
    emu::ScopedOptions o({.policy = p});
    std::vector<int> out(32);
    absl::Status s =
        Launch<&ShuffleWithExitedLanes>({.grid = dim3(1), .block = dim3(32)}, out.data());
    EXPECT_THAT(std::string(s.message()), HasSubstr("exited")) << emu::PolicyName(p);
  }
}

// ---- A wrong fragment layout: A's registers 1 and 2 swapped.
template <bool kBroken>
__global__ void TileMatmul(const uint16_t* A, const uint16_t* B_nk, float* D) {
  uint16_t* sa = DynamicShared<uint16_t>();
  uint16_t* sb = sa + 256;
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  for (int i = lane; i < 256; i += 32) sa[i] = A[i];
  for (int i = lane; i < 128; i += 32) sb[i] = B_nk[i];
  __syncthreads();
  uint32_t a[4], b[2];
  LdMatrix<4, false>(a, sa + (lane % 16) * 16 + 8 * (lane / 16));
  LdMatrix<2, false>(b, sb + (lane % 8) * 16 + 8 * ((lane / 8) % 2));
  if (kBroken) {
    const uint32_t tmp = a[1];
    a[1] = a[2];
    a[2] = tmp;
  }
  float c[4] = {0, 0, 0, 0}, d[4];
  Mma16816Bf16(d, a, b, c);
  for (int i = 0; i < 4; ++i) D[(g + 8 * (i / 2)) * 8 + 2 * t + i % 2] = d[i];
}

uint16_t Bf16(float x) {
  __nv_bfloat16 b = __float2bfloat16(x);
  uint16_t u;
  std::memcpy(&u, &b, 2);
  return u;
}

template <bool kBroken>
double TileMatmulError() {
  std::vector<uint16_t> a(256), b(128);
  std::vector<float> af(256), bf(128);
  for (int i = 0; i < 256; ++i) af[i] = float((i * 37) % 11) - 5.0f;
  for (int i = 0; i < 128; ++i) bf[i] = float((i * 13) % 7) - 3.0f;
  for (int i = 0; i < 256; ++i) a[i] = Bf16(af[i]);
  for (int i = 0; i < 128; ++i) b[i] = Bf16(bf[i]);
  std::vector<float> d(128);
  EXPECT_TRUE(
      Launch<&TileMatmul<kBroken>>({.grid = dim3(1), .block = dim3(32), .dynamic_smem = 1024},
                                   a.data(), b.data(), d.data())
          .ok());
  double worst = 0;
  for (int i = 0; i < 16; ++i) {
    for (int n = 0; n < 8; ++n) {
      double ref = 0;
      for (int k = 0; k < 16; ++k) ref += double(af[i * 16 + k]) * bf[n * 16 + k];
      worst = std::max(worst, std::abs(ref - d[i * 8 + n]));
    }
  }
  return worst;
}

TEST(BrokenKernelsTest, WrongFragmentLayoutGivesWrongResults) {
  EXPECT_EQ(TileMatmulError<false>(), 0.0);  // small integers: exact
  EXPECT_GT(TileMatmulError<true>(), 1.0);
}

// ---- cp.async destinations read too early.
enum class CpBug { kNone, kPlainReadBeforeWait, kLdMatrixBeforeWait, kLdMatrixWithoutBarrier };

template <CpBug kBug>
__global__ void CopyThenRead(const uint16_t* src, float* out, uint32_t* regs) {
  uint16_t* s = DynamicShared<uint16_t>();
  const int lane = threadIdx.x;  // 64 threads: warp 1 copies, warp 0 reads
  if (threadIdx.x >= 32) {
    CpAsync16(s + (threadIdx.x - 32) * 8, src + (threadIdx.x - 32) * 8);
    CpAsyncCommit();
    if (kBug == CpBug::kNone || kBug == CpBug::kLdMatrixWithoutBarrier) CpAsyncWait<0>();
  }
  if (kBug == CpBug::kPlainReadBeforeWait && threadIdx.x >= 32) {
    out[threadIdx.x - 32] = float(s[(threadIdx.x - 32) * 8]);  // the copying thread itself
    CpAsyncWait<0>();
  }
  if (kBug == CpBug::kNone || kBug == CpBug::kPlainReadBeforeWait) __syncthreads();
  if (threadIdx.x < 32) {
    uint32_t r[4];
    LdMatrix<4, false>(r, s + (lane % 32) * 8);
    for (int m = 0; m < 4; ++m) regs[lane * 4 + m] = r[m];
  }
  if (kBug == CpBug::kLdMatrixBeforeWait && threadIdx.x >= 32) CpAsyncWait<0>();
}

template <CpBug kBug>
absl::Status RunCopyThenRead(std::vector<float>* out) {
  std::vector<uint16_t> src(256);
  for (int i = 0; i < 256; ++i) src[i] = uint16_t(i + 1);
  out->assign(32, 0);
  std::vector<uint32_t> regs(128);
  return Launch<&CopyThenRead<kBug>>({.grid = dim3(1), .block = dim3(64), .dynamic_smem = 512},
                                     src.data(), out->data(), regs.data());
}

TEST(BrokenKernelsTest, CpAsyncReadsBeforeWaitOrBarrierAreReported) {
  for (emu::Policy p : {emu::Policy::kThreadRandom, emu::Policy::kWarpSerial, emu::Policy::kInOrder,
                        emu::Policy::kReverse}) {
    for (uint64_t seed = 0; seed < 4; ++seed) {
      emu::ScopedOptions o({.policy = p, .seed = seed});
      std::vector<float> out;
      EXPECT_TRUE(RunCopyThenRead<CpBug::kNone>(&out).ok());
      // The issuing thread reads its destination before waiting: poisoned.
      EXPECT_TRUE(RunCopyThenRead<CpBug::kPlainReadBeforeWait>(&out).ok());
      for (int i = 0; i < 32; ++i) EXPECT_NE(out[i], float(i * 8 + 1)) << i;
      // Another warp reads through ldmatrix before the copy completed, or
      // after it completed but with no barrier in between: named errors.
      // Depending on which warp runs first, the emulator sees the read of an
      // incomplete copy, the read right after another warp's wait, or the
      // copy overwriting what was read: each is the same missing
      // synchronization, reported with the kernel and both source lines.
      const auto reported = AllOf(
          HasSubstr("CopyThenRead"), HasSubstr("broken_kernels_test.cc"),
          AnyOf(HasSubstr("has not completed"), HasSubstr("a __syncthreads is needed between")));
      absl::Status s = RunCopyThenRead<CpBug::kLdMatrixBeforeWait>(&out);
      EXPECT_THAT(std::string(s.message()), reported) << emu::PolicyName(p) << " " << seed;
      s = RunCopyThenRead<CpBug::kLdMatrixWithoutBarrier>(&out);
      EXPECT_THAT(std::string(s.message()), reported) << emu::PolicyName(p) << " " << seed;
    }
  }
}

// ---- A two-stage cp.async pipeline whose refill skips the barrier after the
// last read of a stage (the classic dropped pipeline barrier).
template <bool kBarrier>
__global__ void Pipeline(const uint16_t* src, int tiles, uint32_t* sums) {
  uint16_t* s = DynamicShared<uint16_t>();  // 2 stages x 256 elements
  const int t = threadIdx.x;                // 64 threads, 2 warps
  auto load = [&](int tile) {
    uint16_t* stage = s + (tile % 2) * 256;
    if (t < 32) CpAsync16(stage + t * 8, src + tile * 256 + t * 8);
    CpAsyncCommit();
  };
  load(0);
  uint32_t acc = 0;
  for (int tile = 0; tile < tiles; ++tile) {
    if (tile + 1 < tiles) load(tile + 1);
    if (tile + 1 < tiles) {
      CpAsyncWait<1>();
    } else {
      CpAsyncWait<0>();
    }
    __syncthreads();
    uint32_t r[4];
    LdMatrix<4, false>(r, s + (tile % 2) * 256 + (t % 32) * 8);
    acc += r[0] + r[1] + r[2] + r[3];
    if (kBarrier) __syncthreads();  // the stage may be refilled only after this
  }
  sums[t] = acc;
}

TEST(BrokenKernelsTest, RefillWithoutBarrierIsReported) {
  std::vector<uint16_t> src(4 * 256, 1);
  std::vector<uint32_t> sums(64);
  for (emu::Policy p : {emu::Policy::kThreadRandom, emu::Policy::kWarpSerial}) {
    for (uint64_t seed = 0; seed < kSeeds; ++seed) {
      emu::ScopedOptions o({.policy = p, .seed = seed});
      EXPECT_TRUE(
          Launch<&Pipeline<true>>({.grid = dim3(1), .block = dim3(64), .dynamic_smem = 1024},
                                  src.data(), 4, sums.data())
              .ok());
      absl::Status s = Launch<&Pipeline<false>>(
          {.grid = dim3(1), .block = dim3(64), .dynamic_smem = 1024}, src.data(), 4, sums.data());
      EXPECT_THAT(std::string(s.message()),
                  AllOf(HasSubstr("Pipeline<false>"),
                        AnyOf(HasSubstr("between the last read of a stage and its refill"),
                              HasSubstr("has not completed"))))
          << emu::PolicyName(p) << " seed " << seed;
    }
  }
}

// ---- ldmatrix row addresses must be 16-byte aligned shared memory.
__global__ void MisalignedLdMatrix(uint32_t* out) {
  uint16_t* s = DynamicShared<uint16_t>();
  for (int i = threadIdx.x; i < 300; i += 32) s[i] = 0;
  __syncthreads();
  uint32_t r[1];
  LdMatrix<1, false>(r, s + 1 + threadIdx.x * 8);
  out[threadIdx.x] = r[0];
}

__global__ void GlobalLdMatrix(const uint16_t* g, uint32_t* out) {
  uint32_t r[1];
  LdMatrix<1, false>(r, g + threadIdx.x * 8);
  out[threadIdx.x] = r[0];
}

TEST(BrokenKernelsTest, BadLdMatrixAddressesAreReported) {
  std::vector<uint32_t> out(32);
  EXPECT_THAT(Launch<&MisalignedLdMatrix>(
                  {.grid = dim3(1), .block = dim3(32), .dynamic_smem = 1024}, out.data())
                  .message(),
              HasSubstr("is not 16-byte aligned"));
  alignas(16) static uint16_t global[256];
  EXPECT_THAT(
      Launch<&GlobalLdMatrix>({.grid = dim3(1), .block = dim3(32)}, global, out.data()).message(),
      HasSubstr("outside the block's shared memory"));
}

}  // namespace
}  // namespace loom::cuda_emu
