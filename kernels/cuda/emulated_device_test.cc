// The emulated CUDA device: memory with statistics and NaN-poisoned fresh
// blocks, copies between host and devices, the emulated CudaBackend behind
// the ops, and the errors of misuse (CPU tensors handed to the CUDA backend,
// device indices out of range, labels and ids out of range on the device).
#include "kernels/cuda/emulated_device.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/allocator.h"
#include "runtime/backend.h"
#include "runtime/ops/ops.h"

namespace loom::cuda_emu {
namespace {

using ::testing::HasSubstr;

Tensor OnCuda(const Tensor& t, int index = 0) {
  absl::StatusOr<Tensor> d = t.CopyTo(Device::CUDA(index));
  EXPECT_TRUE(d.ok()) << d.status();
  return *d;
}

TEST(EmulatedDeviceTest, RegistersAllocatorCopiesAndBackend) {
  EXPECT_TRUE(EmulatedDeviceRegistered());
  EXPECT_TRUE(HasBackend(DeviceType::kCUDA));
  EXPECT_EQ(GetBackend(Device::CUDA(0)).device_type(), DeviceType::kCUDA);
}

TEST(EmulatedDeviceTest, MemoryStatisticsAndPoisonedFreshMemory) {
  const int64_t before = GetMemoryStats(Device::CUDA(1)).current_bytes;
  {
    Tensor t = Tensor::Empty({100}, DType::kF32, Device::CUDA(1));
    EXPECT_EQ(GetMemoryStats(Device::CUDA(1)).current_bytes, before + 400);
    EXPECT_GE(GetMemoryStats(Device::CUDA(1)).peak_bytes, before + 400);
    for (double v : t.ToDoubles()) ASSERT_TRUE(std::isnan(v));
  }
  EXPECT_EQ(GetMemoryStats(Device::CUDA(1)).current_bytes, before);
  absl::StatusOr<Tensor> bad = Tensor::TryEmpty({4}, DType::kF32, Device::CUDA(2));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("cuda:2 is not an emulated device"));
}

TEST(EmulatedDeviceTest, CopiesBetweenHostAndDevices) {
  const Tensor host = Tensor::FromVector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor d0 = OnCuda(host, 0);
  EXPECT_EQ(d0.device(), Device::CUDA(0));
  absl::StatusOr<Tensor> d1 = d0.CopyTo(Device::CUDA(1));
  ASSERT_TRUE(d1.ok()) << d1.status();
  EXPECT_EQ(d1->ToDoubles(), host.ToDoubles());
  // A non-contiguous device view goes through the backend's strided copy.
  EXPECT_EQ(Transpose(d0, 0, 1).ToDoubles(), Transpose(host, 0, 1).ToDoubles());
  EXPECT_EQ(Cast(d0, DType::kBF16).ToDoubles(), Cast(host, DType::kBF16).ToDoubles());
}

TEST(EmulatedDeviceTest, OpsOnCudaTensorsMatchTheCpu) {
  const Tensor a = Tensor::FromVector<float>({1, -2, 3, -4, 5, -6}, {2, 3});
  const Tensor b = Tensor::FromVector<float>({0.5f, 0.25f, 2}, {3});
  const Tensor ca = OnCuda(a), cb = OnCuda(b);
  EXPECT_EQ(Add(ca, cb).ToDoubles(), Add(a, b).ToDoubles());  // broadcast
  EXPECT_EQ(Sum(ca, {0}).ToDoubles(), Sum(a, {0}).ToDoubles());
  const Tensor mm = MatMul(ca, Transpose(ca, 0, 1));
  EXPECT_EQ(mm.device(), Device::CUDA(0));
  const std::vector<double> got = mm.ToDoubles(), want = MatMul(a, Transpose(a, 0, 1)).ToDoubles();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5);
}

using EmulatedDeviceDeathTest = ::testing::Test;

TEST_F(EmulatedDeviceDeathTest, CpuTensorsAreRejectedByTheCudaBackend) {
  const Tensor cpu = Tensor::Zeros({3}, DType::kF32);
  EXPECT_DEATH(GetBackend(Device::CUDA(0)).Fill(cpu, 1.0),
               "Fill \\(CUDA backend\\): a tensor \\[3\\] is on cpu, not on a CUDA device");
  const Tensor cuda = Tensor::Zeros({3}, DType::kF32, Device::CUDA(0));
  const Tensor other = Tensor::Zeros({3}, DType::kF32, Device::CUDA(1));
  EXPECT_DEATH(GetBackend(Device::CUDA(0)).Copy(other, cuda), "tensors on cuda:1 and cuda:0");
}

TEST_F(EmulatedDeviceDeathTest, LabelsAndIdsOutOfRangeAbortWithTheCpuMessage) {
  const Tensor logits = OnCuda(Tensor::Zeros({3, 5}, DType::kF32));
  const Tensor labels = OnCuda(Tensor::FromVector<int64_t>({1, 7, -100}, {3}));
  EXPECT_DEATH(CrossEntropy(logits, labels),
               "label 7 at position 1 \\(of 3 flattened tokens\\) is not in \\[0, 5\\)");
  const Tensor weight = OnCuda(Tensor::Zeros({4, 2}, DType::kF32));
  const Tensor ids = OnCuda(Tensor::FromVector<int64_t>({0, 3, 4}, {3}));
  EXPECT_DEATH(Embedding(ids, weight),
               "id 4 at position 2 \\(of 3 flattened ids\\) is out of range for a vocabulary of 4");
}

}  // namespace
}  // namespace loom::cuda_emu
