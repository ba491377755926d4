// What runs without a GPU: the dtype and op mapping, NCCL's error strings, and the clear error
// when no CUDA device is present. With a GPU (cuda::IsAvailable()), the same collective cases
// as the Gloo tests run on cuda:0 with one rank.
#include "collectives/nccl_communicator.h"

#include "collectives/collective_check.h"
#include "collectives/thread_ranks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/cuda/device.h"

namespace loom::collectives {
namespace {

using ::testing::HasSubstr;

TEST(NcclMappingTest, DTypes) {
  EXPECT_EQ(*NcclDataType(DType::kF32), ncclFloat32);
  EXPECT_EQ(*NcclDataType(DType::kF64), ncclFloat64);
  EXPECT_EQ(*NcclDataType(DType::kBF16), ncclBfloat16);
  EXPECT_EQ(*NcclDataType(DType::kF16), ncclFloat16);
  EXPECT_EQ(*NcclDataType(DType::kI32), ncclInt32);
  EXPECT_EQ(*NcclDataType(DType::kI64), ncclInt64);
  EXPECT_THAT(NcclDataType(DType::kBool).status().message(),
              HasSubstr("dtype bool is not supported"));
}

TEST(NcclMappingTest, ReduceOps) {
  EXPECT_EQ(NcclReduceOp(ReduceOp::kSum), ncclSum);
  EXPECT_EQ(NcclReduceOp(ReduceOp::kAvg), ncclAvg);
  EXPECT_EQ(NcclReduceOp(ReduceOp::kMax), ncclMax);
}

TEST(NcclMappingTest, ErrorsCarryNcclsMessage) {
  EXPECT_TRUE(NcclStatus(ncclSuccess, "x").ok());
  absl::Status st = NcclStatus(ncclInvalidArgument, "ncclAllReduce");
  EXPECT_THAT(st.message(), HasSubstr("ncclAllReduce: NCCL error 4: invalid argument"));
}

TEST(NcclCommunicatorTest, CpuTensorsAreRejectedByTheChecks) {
  EXPECT_THAT(CheckTensor("all_reduce", "tensor", Tensor::Zeros({2}, DType::kF32),
                          DeviceType::kCUDA, "nccl")
                  .message(),
              HasSubstr("tensor is on cpu but the nccl backend needs cuda tensors"));
}

TEST(NcclCommunicatorTest, NoDeviceIsAClearError) {
  if (cuda::IsAvailable()) {
    // A GPU machine: the communicator comes up and a one-rank all-reduce is the identity.
    ASSERT_TRUE(RunOnThreadRanks(1, [](int, Communicator& cpu, const Store& store) {
                  absl::StatusOr<std::unique_ptr<NcclCommunicator>> nccl = NcclCommunicator::Create(
                      cpu, store.WithPrefix("nccl/"), 0, TestCommOptions());
                  ASSERT_TRUE(nccl.ok()) << nccl.status();
                  Tensor t = *Tensor::Full({4}, 2.0, DType::kF32).CopyTo(Device::CUDA(0));
                  ASSERT_TRUE((*nccl)->AllReduce(t, ReduceOp::kSum)->Wait().ok());
                  ASSERT_TRUE((*nccl)->Barrier()->Wait().ok());
                  EXPECT_EQ(t.CopyTo(Device::CPU())->ToDoubles()[0], 2.0);
                }).ok());
    return;
  }
  ASSERT_TRUE(RunOnThreadRanks(1, [](int, Communicator& cpu, const Store& store) {
                absl::StatusOr<std::unique_ptr<NcclCommunicator>> nccl =
                    NcclCommunicator::Create(cpu, store.WithPrefix("nccl/"), 0, TestCommOptions());
                ASSERT_FALSE(nccl.ok());
                EXPECT_EQ(nccl.status().code(), absl::StatusCode::kFailedPrecondition);
                EXPECT_THAT(nccl.status().message(),
                            HasSubstr("nccl communicator 'world' needs cuda:0: "));
              }).ok());
}

}  // namespace
}  // namespace loom::collectives
