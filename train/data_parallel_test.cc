#include "train/data_parallel.h"

#include "collectives/thread_ranks.h"
#include "gtest/gtest.h"

namespace loom {
namespace {

using collectives::Communicator;
using collectives::RunOnThreadRanks;

TEST(DataParallelTest, OnlyRankZeroWrites) {
  ASSERT_TRUE(RunOnThreadRanks(3, [](int rank, Communicator& comm) {
                DataParallel dp(comm);
                EXPECT_EQ(dp.rank(), rank);
                EXPECT_EQ(dp.size(), 3);
                EXPECT_EQ(dp.is_output_rank(), rank == 0);
              }).ok());
}

TEST(DataParallelTest, SumsCountsLossAndGradientsKeepingMissingOnesMissing) {
  ASSERT_TRUE(RunOnThreadRanks(2, [](int rank, Communicator& comm) {
                DataParallel dp(comm);
                int64_t trainable = 10 + rank, tokens = 100 * (rank + 1);
                dp.SumCounts(&trainable, &tokens);
                EXPECT_EQ(trainable, 21);
                EXPECT_EQ(tokens, 300);

                // p0: a gradient on both ranks; p1: only on rank 1 (rank 0 had no micro-batch
                // touching it); p2: on no rank (stays undefined, as on one rank); p3: a bf16
                // gradient.
                std::vector<Tensor> params = {
                    Tensor::Zeros({3}, DType::kF32), Tensor::Zeros({2}, DType::kF32),
                    Tensor::Zeros({4}, DType::kF32), Tensor::Zeros({2}, DType::kBF16)};
                params[0].set_grad(Tensor::FromVector<float>({1.f + rank, 2.f, 3.f}, {3}));
                if (rank == 1) params[1].set_grad(Tensor::FromVector<float>({5.f, 6.f}, {2}));
                params[3].set_grad(Tensor::FromDoubles({256.0, 1.0}, {2}, DType::kBF16));
                double loss = 1.5 * (rank + 1);
                dp.SumGradients(params, &loss);
                EXPECT_DOUBLE_EQ(loss, 4.5);
                EXPECT_EQ(params[0].grad().ToDoubles(), (std::vector<double>{3, 4, 6}));
                ASSERT_TRUE(params[1].grad().defined());
                EXPECT_EQ(params[1].grad().ToDoubles(), (std::vector<double>{5, 6}));
                EXPECT_FALSE(params[2].grad().defined());
                EXPECT_EQ(params[3].grad().ToDoubles(), (std::vector<double>{512, 2}));
              }).ok());
}

TEST(DataParallelTest, BroadcastParametersMakesReplicasEqual) {
  ASSERT_TRUE(RunOnThreadRanks(3, [](int rank, Communicator& comm) {
                DataParallel dp(comm);
                std::vector<Tensor> params = {Tensor::Full({5}, rank + 1.0, DType::kF32)};
                dp.BroadcastParameters(params);
                EXPECT_EQ(params[0].ToDoubles(), std::vector<double>(5, 1.0));
              }).ok());
}

}  // namespace
}  // namespace loom
