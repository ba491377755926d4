#include "collectives/gloo_communicator.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "collectives/collective_cases.h"
#include "collectives/thread_ranks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::collectives {
namespace {

using ::testing::HasSubstr;

class EveryWorldSize : public ::testing::TestWithParam<int> {};

TEST_P(EveryWorldSize, EveryCollectiveEveryDTypeMatchesLocalValues) {
  const int n = GetParam();
  absl::Status setup = RunOnThreadRanks(n, [&](int rank, Communicator& comm) {
    EXPECT_EQ(comm.rank(), rank);
    EXPECT_EQ(comm.size(), n);
    absl::Status st = RunCollectiveCases(comm);
    EXPECT_TRUE(st.ok()) << "rank " << rank << ": " << st;
  });
  ASSERT_TRUE(setup.ok()) << setup;
}

INSTANTIATE_TEST_SUITE_P(Gloo, EveryWorldSize, ::testing::Values(1, 2, 3, 4, 8));

TEST(GlooCommunicatorTest, HalfPrecisionSumsAccumulateInF32) {
  // 256 + 1 + 1 + 1: in bf16 each partial sum rounds back to 256; in f32 the sum is 259,
  // which rounds (to even) to 260 once.
  ASSERT_TRUE(
      RunOnThreadRanks(4, [](int rank, Communicator& comm) {
        Tensor t = Tensor::FromDoubles({rank == 0 ? 256.0 : 1.0}, {1}, DType::kBF16);
        ASSERT_TRUE(comm.AllReduce(t, ReduceOp::kSum)->Wait().ok());
        EXPECT_EQ(t.item(), 260.0);
        Tensor in = Tensor::FromDoubles({rank == 0 ? 256.0 : 1.0, 0, 0, 0}, {4}, DType::kBF16);
        Tensor out = Tensor::Zeros({1}, DType::kBF16);
        ASSERT_TRUE(comm.ReduceScatter(in, out, ReduceOp::kSum)->Wait().ok());
        EXPECT_EQ(out.item(), rank == 0 ? 260.0 : 0.0);
      }).ok());
}

TEST(GlooCommunicatorTest, LargeTensorsAndManyAsyncOpsInFlight) {
  ASSERT_TRUE(RunOnThreadRanks(3, [](int rank, Communicator& comm) {
                std::vector<Tensor> ts;
                std::vector<WorkHandle> works;
                for (int k = 0; k < 8; ++k) {
                  ts.push_back(Tensor::Full({300000}, double(rank + k), DType::kF32));
                  works.push_back(comm.AllReduce(ts.back(), ReduceOp::kSum));
                }
                for (int k = 0; k < 8; ++k) {
                  ASSERT_TRUE(works[size_t(k)]->Wait().ok());
                  EXPECT_TRUE(works[size_t(k)]->IsCompleted());
                  const std::vector<double> v = ts[size_t(k)].ToDoubles();
                  EXPECT_EQ(v.front(), 3.0 + 3 * k);
                  EXPECT_EQ(v.back(), 3.0 + 3 * k);
                }
                EXPECT_EQ(comm.sequence_number(), 8u);
              }).ok());
}

TEST(GlooCommunicatorTest, ReduceScatterOfManySegments) {
  // 300000 elements per chunk: more than one 1 MiB segment per ring step, in both the f32 and
  // the converted bf16 paths.
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    ASSERT_TRUE(RunOnThreadRanks(3, [dtype](int rank, Communicator& comm) {
                  const int64_t chunk = 300000;
                  std::vector<double> v(static_cast<size_t>(3 * chunk));
                  for (size_t i = 0; i < v.size(); ++i) v[i] = double(i % 7) + rank;
                  Tensor in = Tensor::FromDoubles(v, {3 * chunk}, dtype);
                  Tensor out = Tensor::Zeros({chunk}, dtype);
                  ASSERT_TRUE(comm.ReduceScatter(in, out, ReduceOp::kSum)->Wait().ok());
                  const std::vector<double> got = out.ToDoubles();
                  int64_t wrong = 0;
                  for (int64_t i = 0; i < chunk; ++i) {
                    wrong += got[size_t(i)] != 3.0 * double((rank * chunk + i) % 7) + 3.0;
                  }
                  EXPECT_EQ(wrong, 0) << DTypeName(dtype) << " rank " << rank;
                }).ok());
  }
}

TEST(GlooCommunicatorTest, ArgumentErrorsAreClearAndImmediate) {
  ASSERT_TRUE(
      RunOnThreadRanks(2, [](int rank, Communicator& comm) {
        Tensor x = Tensor::Zeros({4}, DType::kF32);
        // A tensor claiming to live on a GPU.
        float host[4] = {0};
        Tensor cuda = Tensor::FromStorage(
            Storage::Wrap(host, sizeof(host), Device::CUDA(0), nullptr), 0, {4}, {1}, DType::kF32);
        absl::Status st = comm.AllReduce(cuda, ReduceOp::kSum)->Wait();
        EXPECT_THAT(st.message(), HasSubstr("all_reduce: tensor is on cuda:0 but the gloo backend "
                                            "needs cpu tensors"));
        Tensor strided = Tensor::FromStorage(x.storage(), 0, {2}, {2}, DType::kF32);
        EXPECT_THAT(comm.Broadcast(strided, 0)->Wait().message(), HasSubstr("is not contiguous"));
        EXPECT_THAT(
            comm.AllReduce(Tensor::Zeros({2}, DType::kBool), ReduceOp::kSum)->Wait().message(),
            HasSubstr("dtype bool; supported: f32, f64, bf16, f16, i32, i64"));
        EXPECT_THAT(
            comm.AllReduce(Tensor::Zeros({2}, DType::kI32), ReduceOp::kAvg)->Wait().message(),
            HasSubstr("avg of i32 tensors is not supported"));
        EXPECT_THAT(comm.AllGather(x, Tensor::Zeros({7}, DType::kF32))->Wait().message(),
                    HasSubstr("output must be f32 with 2 x 4 = 8 elements"));
        EXPECT_THAT(comm.AllGather(x, Tensor::Zeros({8}, DType::kBF16))->Wait().message(),
                    HasSubstr("got bf16 [8]"));
        EXPECT_THAT(comm.ReduceScatter(x, Tensor::Zeros({3}, DType::kF32), ReduceOp::kSum)
                        ->Wait()
                        .message(),
                    HasSubstr("input must have 2 x output elements"));
        EXPECT_THAT(
            comm.AllGatherUneven(x, Tensor::Zeros({5}, DType::kF32), {4, 2})->Wait().message(),
            HasSubstr("counts summing to 6"));
        EXPECT_THAT(comm.Broadcast(x, 2)->Wait().message(), HasSubstr("root 2 is not a rank"));
        EXPECT_THAT(comm.Send(x, rank)->Wait().message(), HasSubstr("is not another rank"));
        // Nothing was issued, so the group still works.
        EXPECT_EQ(comm.sequence_number(), 0u);
        EXPECT_TRUE(comm.AllReduce(x, ReduceOp::kSum)->Wait().ok());
      }).ok());
}

TEST(GlooCommunicatorTest, DifferentCollectivesAreDetectedOnBothSides) {
  std::vector<std::string> errors(2);
  ASSERT_TRUE(RunOnThreadRanks(2, [&](int rank, Communicator& comm) {
                Tensor x = Tensor::Zeros({16}, DType::kF32), out = Tensor::Zeros({32}, DType::kF32);
                absl::Status st = rank == 0 ? comm.AllReduce(x, ReduceOp::kSum)->Wait()
                                            : comm.AllGather(x, out)->Wait();
                EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
                errors[size_t(rank)] = std::string(st.message());
                // The communicator is now unusable and says why.
                EXPECT_THAT(comm.Barrier()->Wait().message(),
                            HasSubstr("unusable after an earlier failure"));
              }).ok());
  EXPECT_THAT(errors[0], HasSubstr("rank 0 called all_reduce(sum) f32 x 16 (seq 0) but rank 1 "
                                   "called all_gather f32 x 16 -> 32 (seq 0)"));
  EXPECT_THAT(errors[1], HasSubstr("rank 1 called all_gather f32 x 16 -> 32 (seq 0) but rank 0 "
                                   "called all_reduce(sum)"));
}

TEST(GlooCommunicatorTest, DifferentSizesAreDetected) {
  ASSERT_TRUE(RunOnThreadRanks(3, [&](int rank, Communicator& comm) {
                Tensor x = Tensor::Zeros({rank == 2 ? 5 : 4}, DType::kBF16);
                absl::Status st = comm.AllReduce(x, ReduceOp::kMax)->Wait();
                EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
                EXPECT_THAT(st.message(),
                            HasSubstr(rank == 2 ? "rank 2 called all_reduce(max) bf16 x 5"
                                                : "but rank 2 called all_reduce(max) bf16 x 5"));
              }).ok());
}

TEST(GlooCommunicatorTest, MismatchedPointToPointIsDetectedOnBothSides) {
  ASSERT_TRUE(RunOnThreadRanks(2, [&](int rank, Communicator& comm) {
                absl::Status st = rank == 0 ? comm.Send(Tensor::Zeros({8}, DType::kF32), 1)->Wait()
                                            : comm.Recv(Tensor::Zeros({6}, DType::kF32), 0)->Wait();
                EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
                EXPECT_THAT(st.message(), HasSubstr("mismatched point-to-point"));
                EXPECT_THAT(st.message(),
                            HasSubstr(rank == 0 ? "rank 1 called recv(from 0) f32 x 6"
                                                : "rank 0 called send(to 1) f32 x 8"));
              }).ok());
}

TEST(GlooCommunicatorTest, ChecksCanBeTurnedOff) {
  CommOptions options = TestCommOptions();
  options.check_collectives = false;
  ASSERT_TRUE(RunOnThreadRanks(
                  2,
                  [](int rank, Communicator& comm) {
                    Tensor t = Tensor::Full({3}, rank + 1, DType::kF32);
                    ASSERT_TRUE(comm.AllReduce(t, ReduceOp::kSum)->Wait().ok());
                    EXPECT_EQ(t.ToDoubles(), std::vector<double>({3, 3, 3}));
                    EXPECT_TRUE(RunCollectiveCases(comm, {DType::kF32}).ok());
                  },
                  options)
                  .ok());
}

TEST(GlooCommunicatorTest, APeerThatNeverArrivesIsNamedWithinTheTimeout) {
  CommOptions options = TestCommOptions(absl::Seconds(1));
  std::atomic<int> failed{0};
  ASSERT_TRUE(RunOnThreadRanks(
                  3,
                  [&](int rank, Communicator& comm) {
                    Tensor x = Tensor::Zeros({64}, DType::kF32);
                    // Every rank does one all-reduce; then ranks 0 and 1 do a second one that
                    // rank 2 never joins.
                    ASSERT_TRUE(comm.AllReduce(x, ReduceOp::kSum)->Wait().ok());
                    if (rank == 2) {
                      while (failed.load() < 2)
                        std::this_thread::sleep_for(std::chrono::milliseconds(10));
                      return;
                    }
                    const absl::Time start = absl::Now();
                    absl::Status st = comm.AllGather(x, Tensor::Zeros({192}, DType::kF32))->Wait();
                    EXPECT_LT(absl::Now() - start, absl::Seconds(4));
                    EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
                    EXPECT_THAT(st.message(), HasSubstr(absl::StrCat(
                                                  "at rank ", rank,
                                                  ": all_gather f32 x 64 -> 192 (seq 1), 256 B")));
                    EXPECT_THAT(st.message(),
                                HasSubstr("rank 2: did not arrive (last: all_reduce(sum) f32 x 64 "
                                          "(seq 0), done)"));
                    EXPECT_THAT(st.message(), Not(HasSubstr(rank == 0 ? "rank 1:" : "rank 0:")));
                    failed.fetch_add(1);
                  },
                  options)
                  .ok());
}

TEST(GlooCommunicatorTest, SplitFormsGroupsByColorOrderedByKey) {
  ASSERT_TRUE(RunOnThreadRanks(4, [](int rank, Communicator& comm) {
                // Colors: {0, 2} and {1, 3}; keys reverse the order inside each group.
                absl::StatusOr<std::unique_ptr<Communicator>> sub =
                    comm.Split(rank % 2, -rank, "pairs");
                ASSERT_TRUE(sub.ok()) << sub.status();
                Communicator& g = **sub;
                EXPECT_EQ(g.size(), 2);
                EXPECT_EQ(g.rank(), rank < 2 ? 1 : 0);
                EXPECT_EQ(g.name(), "pairs");
                EXPECT_EQ(g.global_ranks(), (std::vector<int>{rank % 2 + 2, rank % 2}));
                Tensor t = Tensor::Full({2}, rank, DType::kI64);
                ASSERT_TRUE(g.AllReduce(t, ReduceOp::kSum)->Wait().ok());
                EXPECT_EQ(t.ToDoubles()[0], rank % 2 == 0 ? 2 : 4);
                EXPECT_TRUE(RunCollectiveCases(g, {DType::kF32, DType::kBF16}).ok());
                // The parent still works after the split.
                ASSERT_TRUE(comm.Barrier()->Wait().ok());
                absl::StatusOr<std::unique_ptr<Communicator>> none = comm.Split(-1, 0, "nobody");
                ASSERT_TRUE(none.ok());
                EXPECT_EQ(*none, nullptr);
              }).ok());
}

}  // namespace
}  // namespace loom::collectives
