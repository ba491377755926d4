// The CUDA random kernels run under the emulator: bit-identical to host Philox.
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/random.h"
#include "runtime/half.h"
#include "runtime/philox.h"

namespace loom::cuda_emu {
namespace {

TEST(RandomEmuTest, FillsAreBitIdenticalToHostPhilox) {
  constexpr int64_t kN = 3000;  // several blocks, not a multiple of the block size
  const uint64_t seed = 0x1234'5678'9abcull, offset = 77;
  std::vector<float> f32(kN);
  ASSERT_TRUE(
      LaunchRandomUniform(f32.data(), DType::kF32, kN, seed, offset, -2.0, 3.0, nullptr).ok());
  for (int64_t i = 0; i < kN; ++i) {
    const double u = philox::Uniform(seed, offset + uint64_t(i));
    ASSERT_EQ(f32[i], float(-2.0 + 5.0 * u)) << i;
  }
  std::vector<uint16_t> bf16(kN);
  ASSERT_TRUE(
      LaunchRandomNormal(bf16.data(), DType::kBF16, kN, seed, offset, 1.0, 0.5, nullptr).ok());
  for (int64_t i = 0; i < kN; ++i) {
    const double z = philox::Normal(seed, offset + uint64_t(i));
    ASSERT_EQ(bf16[i], BFloat16(float(1.0 + 0.5 * z)).bits) << i;
  }
}

}  // namespace
}  // namespace loom::cuda_emu
