// The peak figures the benchmarks report against, and device detection without a GPU.
#include "kernels/cuda/bench_util.h"

#include <cuda_runtime_api.h>

#include "gtest/gtest.h"

namespace loom::cuda::bench {
namespace {

TEST(BenchUtilTest, PeaksOfKnownDevices) {
  // A100 40GB: HBM2 at 1215 MHz on a 5120-bit bus; 108 SMs at 1.41 GHz.
  EXPECT_NEAR(PeakBytesPerSecond(1215e6, 5120) / 1e9, 1555.2, 0.1);
  EXPECT_NEAR(Bf16FlopsPerSmPerClock(80) * 108 * 1.41e9 / 1e12, 311.9, 0.1);
  // H100 SXM: HBM3 at 2619 MHz on 5120 bits; 132 SMs at 1.83 GHz.
  EXPECT_NEAR(PeakBytesPerSecond(2619e6, 5120) / 1e9, 3352.3, 0.1);
  EXPECT_NEAR(Bf16FlopsPerSmPerClock(90) * 132 * 1.83e9 / 1e12, 989.4, 0.1);
  EXPECT_EQ(Bf16FlopsPerSmPerClock(75), 0);  // unknown: no peak is claimed
}

TEST(BenchUtilTest, CurrentDeviceWithoutGpuSaysWhy) {
  int count = 0;
  const bool gpu = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  cudaGetLastError();
  const absl::StatusOr<Device> d = CurrentDevice();
  if (gpu) {
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_GT(d->multiprocessors, 0);
    EXPECT_GT(d->peak_bytes_per_s, 0);
  } else {
    EXPECT_TRUE(absl::IsFailedPrecondition(d.status()));
    EXPECT_FALSE(d.status().message().empty());
  }
}

}  // namespace
}  // namespace loom::cuda::bench
