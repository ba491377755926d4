// Tests of the CUDA random fills. Without a GPU the launchers must fail cleanly with a Status;
// with one, the fills must match Philox evaluated on the host.
#include "kernels/cuda/random.h"

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/half.h"
#include "runtime/philox.h"

namespace loom::cuda {
namespace {

using ::testing::HasSubstr;

// Asks the CUDA runtime directly, independently of runtime/cuda/device.h.
bool HaveGpu() {
  int count = 0;
  const bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  cudaGetLastError();
  return ok;
}

TEST(RandomLauncherTest, RejectsBadArgumentsBeforeTouchingTheDevice) {
  float buf[4];
  absl::Status s = LaunchRandomUniform(buf, DType::kI32, 4, 1, 0, 0.0, 1.0, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("i32 is not floating"));

  s = LaunchRandomNormal(buf, DType::kF32, -1, 1, 0, 0.0, 1.0, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("RandomNormal: numel -1 < 0"));

  s = LaunchRandomNormal(nullptr, DType::kBF16, 8, 1, 0, 0.0, 1.0, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("null output"));
}

TEST(RandomLauncherTest, EmptyFillIsANoOp) {
  EXPECT_TRUE(LaunchRandomUniform(nullptr, DType::kF32, 0, 1, 0, 0.0, 1.0, nullptr).ok());
  EXPECT_TRUE(LaunchRandomNormal(nullptr, DType::kF16, 0, 1, 0, 0.0, 1.0, nullptr).ok());
}

// Host reference: the formulas of kernels/cpu/random.cc, evaluated here with runtime/philox.h.
std::vector<double> ReferenceUniform(DType dtype, int64_t n, uint64_t seed, uint64_t offset,
                                     double low, double high) {
  std::vector<double> out(n);
  for (int64_t i = 0; i < n; ++i) {
    const double v = low + (high - low) * double(philox::Uniform(seed, offset + uint64_t(i)));
    switch (dtype) {
      case DType::kF64:
        out[i] = v;
        break;
      case DType::kF32:
        out[i] = float(v);
        break;
      case DType::kBF16:
        out[i] = float(BFloat16(float(v)));
        break;
      default:
        out[i] = float(Float16(float(v)));
        break;
    }
  }
  return out;
}

std::vector<double> DeviceToDoubles(const void* dev, DType dtype, int64_t n) {
  const size_t elem = dtype == DType::kF64 ? 8 : dtype == DType::kF32 ? 4 : 2;
  std::vector<unsigned char> host(n * elem);
  EXPECT_EQ(cudaMemcpy(host.data(), dev, host.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  std::vector<double> out(n);
  for (int64_t i = 0; i < n; ++i) {
    const unsigned char* p = host.data() + i * elem;
    if (dtype == DType::kF64) {
      std::memcpy(&out[i], p, 8);
    } else if (dtype == DType::kF32) {
      float f;
      std::memcpy(&f, p, 4);
      out[i] = f;
    } else {
      uint16_t bits;
      std::memcpy(&bits, p, 2);
      out[i] =
          dtype == DType::kBF16 ? float(BFloat16::FromBits(bits)) : float(Float16::FromBits(bits));
    }
  }
  return out;
}

TEST(RandomLauncherTest, FillsMatchHostPhiloxOrFailCleanlyWithoutGpu) {
  constexpr int64_t kN = 3000;  // more than one block of threads, not a multiple of it
  const uint64_t seed = 0x1234'5678'9abcull, offset = 77;
  if (!HaveGpu()) {
    // No device: the launch itself must fail with a Status naming the launch, not crash. The
    // pointer is never dereferenced since nothing runs.
    std::vector<float> host(kN);
    absl::Status s =
        LaunchRandomUniform(host.data(), DType::kF32, kN, seed, offset, 0.0, 1.0, nullptr);
    ASSERT_FALSE(s.ok());
    EXPECT_FALSE(absl::IsInvalidArgument(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("launch of loom::cuda::"));
    EXPECT_THAT(std::string(s.message()), HasSubstr("UniformKernel<float>"));
    s = LaunchRandomNormal(host.data(), DType::kBF16, kN, seed, offset, 0.0, 1.0, nullptr);
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(std::string(s.message()), HasSubstr("NormalKernel<__nv_bfloat16>"));
    return;
  }
  void* dev = nullptr;
  ASSERT_EQ(cudaMalloc(&dev, kN * 8), cudaSuccess);
  for (DType dtype : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(std::string(DTypeName(dtype)));
    ASSERT_TRUE(LaunchRandomUniform(dev, dtype, kN, seed, offset, -2.0, 3.0, nullptr).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<double> got = DeviceToDoubles(dev, dtype, kN);
    const std::vector<double> want = ReferenceUniform(dtype, kN, seed, offset, -2.0, 3.0);
    for (int64_t i = 0; i < kN; ++i) ASSERT_EQ(got[i], want[i]) << "element " << i;

    ASSERT_TRUE(LaunchRandomNormal(dev, dtype, kN, seed, offset, 1.0, 0.5, nullptr).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const std::vector<double> normal = DeviceToDoubles(dev, dtype, kN);
    // Device and host libm may differ in the last bits of log/cos: compare with the tolerance
    // of the output type.
    const double tol = dtype == DType::kF64 ? 1e-13 : dtype == DType::kF32 ? 1e-6 : 1e-2;
    for (int64_t i = 0; i < kN; ++i) {
      const double want_i = 1.0 + 0.5 * philox::Normal(seed, offset + uint64_t(i));
      ASSERT_NEAR(normal[i], want_i, tol * (1.0 + std::abs(want_i))) << "element " << i;
    }
  }
  ASSERT_EQ(cudaFree(dev), cudaSuccess);
}

}  // namespace
}  // namespace loom::cuda
