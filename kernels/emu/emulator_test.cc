// The emulator's execution model: barriers, policies, shuffles, votes, shared
// memory, atomics and launch checks, on small kernels written in this file.
#include "kernels/emu/emulator.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/device/compat.h"

namespace loom::cuda_emu {
namespace {

using ::testing::HasSubstr;

const emu::Policy kPolicies[] = {emu::Policy::kThreadRandom, emu::Policy::kWarpSerial,
                                 emu::Policy::kInOrder, emu::Policy::kReverse};

// ---- A block reduction through static shared memory and barriers.
__global__ void BlockSum(const int* in, int* out) {
  LOOM_SHARED(int, partial, 128);
  const int t = threadIdx.x;
  partial[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) partial[t] += partial[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

TEST(EmulatorTest, BlockReductionIsExactUnderEveryPolicy) {
  std::vector<int> in(4 * 128);
  std::iota(in.begin(), in.end(), 1);
  for (emu::Policy p : kPolicies) {
    for (uint64_t seed = 0; seed < 4; ++seed) {
      emu::ScopedOptions o({.policy = p, .seed = seed});
      std::vector<int> out(4, -1);
      ASSERT_TRUE(
          Launch<&BlockSum>({.grid = dim3(4), .block = dim3(128)}, in.data(), out.data()).ok());
      for (int b = 0; b < 4; ++b) {
        const int first = b * 128 + 1, last = b * 128 + 128;
        EXPECT_EQ(out[b], (first + last) * 128 / 2) << emu::PolicyName(p) << " seed " << seed;
      }
      EXPECT_EQ(emu::LastLaunchStats().blocks, 4);
      EXPECT_EQ(emu::LastLaunchStats().barriers, 4 * 8);  // 1 + log2(128) per block
    }
  }
}

// ---- Built-in variables in 3-D grids and blocks.
__global__ void WriteIds(int* out) {
  const int bx = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int tx = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int n = blockDim.x * blockDim.y * blockDim.z;
  out[bx * n + tx] = bx * 1000 + tx;
}

TEST(EmulatorTest, ThreeDimensionalIndices) {
  std::vector<int> out(2 * 3 * 2 * (4 * 2 * 3), -1);
  ASSERT_TRUE(Launch<&WriteIds>({.grid = dim3(2, 3, 2), .block = dim3(4, 2, 3)}, out.data()).ok());
  for (int b = 0; b < 12; ++b) {
    for (int t = 0; t < 24; ++t) EXPECT_EQ(out[b * 24 + t], b * 1000 + t);
  }
}

// ---- Scheduling order: each thread records when it ran its first phase.
__global__ void RecordOrder(int* counter, int* first, int* second) {
  first[threadIdx.x] = atomicAdd(counter, 1);
  __syncthreads();
  second[threadIdx.x] = atomicAdd(counter, 1);
}

std::vector<int> Order(emu::Policy p, uint64_t seed, std::vector<int>* second = nullptr) {
  emu::ScopedOptions o({.policy = p, .seed = seed});
  int counter = 0;
  std::vector<int> first(128), sec(128);
  EXPECT_TRUE(Launch<&RecordOrder>({.grid = dim3(1), .block = dim3(128)}, &counter, first.data(),
                                   sec.data())
                  .ok());
  if (second) *second = sec;
  return first;
}

TEST(EmulatorTest, PoliciesAreDeterministicPerSeed) {
  for (emu::Policy p : kPolicies) {
    EXPECT_EQ(Order(p, 7), Order(p, 7)) << emu::PolicyName(p);
  }
  EXPECT_NE(Order(emu::Policy::kThreadRandom, 1), Order(emu::Policy::kThreadRandom, 2));
  std::vector<int> in_order = Order(emu::Policy::kInOrder, 0);
  for (int t = 0; t < 128; ++t) EXPECT_EQ(in_order[t], t);
  std::vector<int> reverse = Order(emu::Policy::kReverse, 0);
  for (int t = 0; t < 128; ++t) EXPECT_EQ(reverse[t], 127 - t);
}

TEST(EmulatorTest, ThreadRandomReshufflesAfterEveryBarrier) {
  std::vector<int> second;
  std::vector<int> first = Order(emu::Policy::kThreadRandom, 3, &second);
  for (int& s : second) s -= 128;
  EXPECT_NE(first, second);
}

TEST(EmulatorTest, WarpSerialRunsWholeWarpsBetweenBarriers) {
  for (uint64_t seed = 0; seed < 4; ++seed) {
    std::vector<int> first = Order(emu::Policy::kWarpSerial, seed);
    std::set<int> warp_slots;
    for (int w = 0; w < 4; ++w) {
      // The 32 lanes of a warp took 32 consecutive positions.
      int lo = 1 << 30, hi = -1;
      for (int l = 0; l < 32; ++l) {
        lo = std::min(lo, first[w * 32 + l]);
        hi = std::max(hi, first[w * 32 + l]);
      }
      EXPECT_EQ(hi - lo, 31);
      EXPECT_EQ(lo % 32, 0);
      warp_slots.insert(lo / 32);
    }
    EXPECT_EQ(warp_slots.size(), 4u);
  }
}

// ---- Shuffles: every kind, every width, compared with CUDA's documented rules.
__global__ void ShuffleAll(int kind, int arg, int width, int* out) {
  const int lane = threadIdx.x;
  const int v = 100 + lane * 7;
  int r = 0;
  switch (kind) {
    case 0:
      r = __shfl_sync(0xFFFFFFFFu, v, arg, width);
      break;
    case 1:
      r = __shfl_up_sync(0xFFFFFFFFu, v, unsigned(arg), width);
      break;
    case 2:
      r = __shfl_down_sync(0xFFFFFFFFu, v, unsigned(arg), width);
      break;
    default:
      r = __shfl_xor_sync(0xFFFFFFFFu, v, arg, width);
      break;
  }
  out[lane] = r;
}

// The source lane by the CUDA programming guide's definitions, written out
// independently of the emulator's code.
int ExpectedSource(int kind, int lane, int arg, int width) {
  const int base = (lane / width) * width;
  const int local = lane - base;
  switch (kind) {
    case 0:
      return base + ((arg % width) + width) % width;
    case 1:
      return local - arg >= 0 ? lane - arg : lane;
    case 2:
      return local + arg < width ? lane + arg : lane;
    default: {
      const int target = lane ^ arg;
      return target < base + width ? target : lane;
    }
  }
}

TEST(EmulatorTest, ShufflesFollowCudaRules) {
  std::vector<int> out(32);
  for (int kind = 0; kind < 4; ++kind) {
    for (int width : {1, 2, 4, 8, 16, 32}) {
      for (int arg : {-3, 0, 1, 2, 5, 16, 31, 33}) {
        if (kind != 0 && arg < 0) continue;
        ASSERT_TRUE(
            Launch<&ShuffleAll>({.grid = dim3(1), .block = dim3(32)}, kind, arg, width, out.data())
                .ok());
        for (int lane = 0; lane < 32; ++lane) {
          const int src = ExpectedSource(kind, lane, arg, width);
          ASSERT_EQ(out[lane], 100 + src * 7)
              << "kind " << kind << " width " << width << " arg " << arg << " lane " << lane;
        }
      }
    }
  }
}

// A warp reduction of doubles (8-byte payloads) by xor butterflies.
__global__ void WarpSumDouble(const double* in, double* out) {
  double v = in[threadIdx.x];
  for (int m = 16; m > 0; m /= 2) v += __shfl_xor_sync(0xFFFFFFFFu, v, m);
  out[threadIdx.x] = v;
}

TEST(EmulatorTest, ShufflesCarryEightByteValues) {
  std::vector<double> in(64), out(64);
  for (int i = 0; i < 64; ++i) in[i] = 1.0 / (i + 1);
  ASSERT_TRUE(
      Launch<&WarpSumDouble>({.grid = dim3(1), .block = dim3(64)}, in.data(), out.data()).ok());
  for (int w = 0; w < 2; ++w) {
    double s = 0;
    for (int l = 0; l < 32; ++l) s += in[w * 32 + l];
    for (int l = 0; l < 32; ++l) EXPECT_NEAR(out[w * 32 + l], s, 1e-15);
  }
}

__global__ void Votes(unsigned* ballot, int* any, int* all) {
  const int lane = threadIdx.x % 32;
  ballot[threadIdx.x] = __ballot_sync(0xFFFFFFFFu, lane % 3 == 0);
  any[threadIdx.x] = __any_sync(0xFFFFFFFFu, lane == 31);
  all[threadIdx.x] = __all_sync(0xFFFFFFFFu, lane < 31);
}

TEST(EmulatorTest, Votes) {
  std::vector<unsigned> ballot(32);
  std::vector<int> any(32), all(32);
  ASSERT_TRUE(
      Launch<&Votes>({.grid = dim3(1), .block = dim3(32)}, ballot.data(), any.data(), all.data())
          .ok());
  unsigned expected = 0;
  for (int l = 0; l < 32; l += 3) expected |= 1u << l;
  for (int l = 0; l < 32; ++l) {
    EXPECT_EQ(ballot[l], expected);
    EXPECT_EQ(any[l], 1);
    EXPECT_EQ(all[l], 0);
  }
}

// A partial last warp: 48 threads, so warp 1 has lanes 0-15 only.
__global__ void HalfWarpSum(int* out) {
  const unsigned mask = threadIdx.x < 32 ? 0xFFFFFFFFu : 0x0000FFFFu;
  int v = threadIdx.x;
  for (int m = (threadIdx.x < 32 ? 16 : 8); m > 0; m /= 2) v += __shfl_xor_sync(mask, v, m);
  out[threadIdx.x] = v;
}

TEST(EmulatorTest, PartialWarpsUseTheirExistingLanes) {
  std::vector<int> out(48);
  ASSERT_TRUE(Launch<&HalfWarpSum>({.grid = dim3(1), .block = dim3(48)}, out.data()).ok());
  for (int t = 0; t < 32; ++t) EXPECT_EQ(out[t], 31 * 32 / 2);
  for (int t = 32; t < 48; ++t) EXPECT_EQ(out[t], (32 + 47) * 16 / 2);
}

// ---- Threads that exit release barriers, as in PTX.
__global__ void EarlyExit(int* out) {
  LOOM_SHARED(int, s, 64);
  if (threadIdx.x >= 40) return;
  s[threadIdx.x] = int(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = s[39 - threadIdx.x];
}

TEST(EmulatorTest, ExitedThreadsReleaseBarriers) {
  for (emu::Policy p : kPolicies) {
    emu::ScopedOptions o({.policy = p, .seed = 5});
    std::vector<int> out(64, -1);
    ASSERT_TRUE(Launch<&EarlyExit>({.grid = dim3(1), .block = dim3(64)}, out.data()).ok());
    for (int t = 0; t < 40; ++t) EXPECT_EQ(out[t], 39 - t);
    for (int t = 40; t < 64; ++t) EXPECT_EQ(out[t], -1);
  }
}

// ---- Shared memory is fresh and poisoned in every block.
__global__ void ReadUnwritten(float* dyn_out, float* static_out, int* static_prev) {
  LOOM_SHARED(float, s, 32);
  float* d = DynamicShared<float>();
  if (threadIdx.x == 0) {
    dyn_out[blockIdx.x] = d[5];
    static_out[blockIdx.x] = s[3];
    s[3] = 1.0f;  // a value that must not leak into the next block
    d[5] = 2.0f;
    static_prev[blockIdx.x] = 0;
  }
}

TEST(EmulatorTest, SharedMemoryStartsPoisonedInEveryBlock) {
  std::vector<float> d(3), s(3);
  std::vector<int> prev(3);
  ASSERT_TRUE(Launch<&ReadUnwritten>({.grid = dim3(3), .block = dim3(32), .dynamic_smem = 256},
                                     d.data(), s.data(), prev.data())
                  .ok());
  for (int b = 0; b < 3; ++b) {
    EXPECT_TRUE(std::isnan(d[b])) << b;
    EXPECT_TRUE(std::isnan(s[b])) << b;
  }
}

// ---- Atomics across blocks.
__global__ void Histogram(const int* in, int n, int* bins, float* total) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    atomicAdd(&bins[in[i] % 4], 1);
    atomicAdd(total, 0.5f);
  }
}

TEST(EmulatorTest, AtomicsAccumulateAcrossBlocks) {
  std::vector<int> in(1000);
  std::iota(in.begin(), in.end(), 0);
  std::vector<int> bins(4, 0);
  float total = 0;
  ASSERT_TRUE(Launch<&Histogram>({.grid = dim3(8), .block = dim3(128)}, in.data(), 1000,
                                 bins.data(), &total)
                  .ok());
  EXPECT_EQ(bins, (std::vector<int>{250, 250, 250, 250}));
  EXPECT_EQ(total, 500.0f);
}

// ---- Launch limits mirror the GPU's.
__global__ void Nothing() {}

__global__ void TouchDynamic(int bytes) {
  unsigned char* d = DynamicShared<unsigned char>();
  d[bytes - 1] = 0;
}

TEST(EmulatorTest, LaunchLimits) {
  EXPECT_THAT(Launch<&Nothing>({.grid = dim3(1), .block = dim3(1025)}).message(),
              HasSubstr("1..1024 threads"));
  EXPECT_THAT(Launch<&Nothing>({.grid = dim3(0), .block = dim3(32)}).message(),
              HasSubstr("grid dims must be positive"));
  const int big = 100 << 10;
  absl::Status s =
      Launch<&TouchDynamic>({.grid = dim3(1), .block = dim3(32), .dynamic_smem = size_t(big)}, big);
  EXPECT_THAT(s.message(), HasSubstr("must opt in with SetMaxDynamicSharedMemory"));
  EXPECT_THAT(s.message(), HasSubstr("TouchDynamic"));
  ASSERT_TRUE(SetMaxDynamicSharedMemory<&TouchDynamic>(size_t(big)).ok());
  EXPECT_TRUE(
      Launch<&TouchDynamic>({.grid = dim3(1), .block = dim3(32), .dynamic_smem = size_t(big)}, big)
          .ok());
  {
    emu::ScopedOptions o({.sm = 80});
    ASSERT_TRUE(SetMaxDynamicSharedMemory<&TouchDynamic>(200 << 10).ok());
    EXPECT_THAT(Launch<&TouchDynamic>(
                    {.grid = dim3(1), .block = dim3(32), .dynamic_smem = 200 << 10}, 200 << 10)
                    .message(),
                HasSubstr("per block of sm_80"));
  }
  EXPECT_TRUE(Launch<&TouchDynamic>({.grid = dim3(1), .block = dim3(32), .dynamic_smem = 200 << 10},
                                    200 << 10)
                  .ok());
}

TEST(EmulatorTest, KernelNamesIncludeTemplateArguments) {
  EXPECT_EQ(launch_internal::KernelName<&Nothing>(), "loom::cuda_emu::{anonymous}::Nothing");
}

}  // namespace
}  // namespace loom::cuda_emu
