// The varlen layout adapters of the cuDNN path under the emulator, against
// loops over the sequences.
#include "kernels/cuda/attention_cudnn_varlen.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/testing/schedules.h"

namespace loom::cuda_emu {
namespace {

using kernel_testing::Schedule;
using kernel_testing::Schedules;

const std::vector<int32_t> kCuQ = {0, 3, 8, 9, 9}, kCuK = {0, 4, 9, 11, 12};  // a 0-query sequence
constexpr int64_t kSeqs = 4;

TEST(CudnnVarlenTest, RaggedPrepareComputesLengthsAndOffsets) {
  for (const Schedule& schedule : Schedules(2)) {
    SCOPED_TRACE(schedule.Name());
    emu::ScopedOptions o(schedule.options);
    std::vector<int32_t> seq_q(kSeqs, -1), seq_k(kSeqs, -1), off_q(kSeqs + 1, -1),
        off_k(kSeqs + 1, -1), off_v(kSeqs + 1, -1), off_o(kSeqs + 1, -1);
    const RaggedTokenStrides s{.q = 6144, .k = 6144, .v = 1024, .out = 4096};
    ASSERT_TRUE(LaunchCudnnRaggedPrepare(kCuQ.data(), kCuK.data(), kSeqs, s,
                                         {seq_q.data(), seq_k.data(), off_q.data(), off_k.data(),
                                          off_v.data(), off_o.data()},
                                         nullptr)
                    .ok());
    for (int64_t i = 0; i <= kSeqs; ++i) {
      EXPECT_EQ(off_q[i], kCuQ[i] * 6144) << i;
      EXPECT_EQ(off_k[i], kCuK[i] * 6144) << i;
      EXPECT_EQ(off_v[i], kCuK[i] * 1024) << i;
      EXPECT_EQ(off_o[i], kCuQ[i] * 4096) << i;
      if (i < kSeqs) {
        EXPECT_EQ(seq_q[i], kCuQ[i + 1] - kCuQ[i]) << i;
        EXPECT_EQ(seq_k[i], kCuK[i + 1] - kCuK[i]) << i;
      }
    }
  }
}

TEST(CudnnVarlenTest, StatsRepackRoundTrips) {
  constexpr int64_t kHeads = 3, kMaxT = 5, kTotal = 9;
  for (const Schedule& schedule : Schedules(2)) {
    SCOPED_TRACE(schedule.Name());
    emu::ScopedOptions o(schedule.options);
    std::vector<float> lse(kHeads * kTotal);
    for (size_t i = 0; i < lse.size(); ++i) lse[i] = float(i) + 0.5f;
    std::vector<float> padded(kSeqs * kHeads * kMaxT, NAN);
    ASSERT_TRUE(LaunchCudnnStatsRepack(kCuQ.data(), kSeqs, kHeads, kMaxT, kTotal, padded.data(),
                                       lse.data(), /*to_packed=*/false, nullptr)
                    .ok());
    for (int64_t i = 0; i < kSeqs; ++i) {
      for (int64_t h = 0; h < kHeads; ++h) {
        for (int64_t t = 0; t < kMaxT; ++t) {
          const float got = padded[(i * kHeads + h) * kMaxT + t];
          const bool real = t < kCuQ[i + 1] - kCuQ[i];
          EXPECT_EQ(got, real ? lse[h * kTotal + kCuQ[i] + t] : 0.0f) << i << " " << h << " " << t;
        }
      }
    }
    std::vector<float> back(lse.size(), NAN);
    ASSERT_TRUE(LaunchCudnnStatsRepack(kCuQ.data(), kSeqs, kHeads, kMaxT, kTotal, padded.data(),
                                       back.data(), /*to_packed=*/true, nullptr)
                    .ok());
    EXPECT_EQ(back, lse);
  }
}

TEST(CudnnVarlenTest, RejectsBadArguments) {
  EXPECT_TRUE(absl::IsInvalidArgument(
      LaunchCudnnRaggedPrepare(kCuQ.data(), kCuK.data(), 0, {}, {}, nullptr)));
  float x = 0;
  EXPECT_TRUE(
      absl::IsInvalidArgument(LaunchCudnnStatsRepack(nullptr, 1, 1, 1, 1, &x, &x, true, nullptr)));
}

}  // namespace
}  // namespace loom::cuda_emu
