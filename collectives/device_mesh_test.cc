#include "collectives/device_mesh.h"

#include <mutex>

#include "collectives/collective_cases.h"
#include "collectives/thread_ranks.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::collectives {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(MeshShapeTest, ResolvesAndValidates) {
  EXPECT_EQ(*ResolveMeshShape({.dp_replicate = 2, .dp_shard = 2, .cp = 1, .tp = 2}, 8),
            (MeshShape{2, 2, 1, 2}));
  // One unset size is inferred.
  EXPECT_EQ(*ResolveMeshShape({.dp_replicate = 1, .cp = 2, .tp = 2}, 16), (MeshShape{1, 4, 2, 2}));
  EXPECT_THAT(
      ResolveMeshShape({.dp_replicate = 2, .dp_shard = 2, .cp = 1, .tp = 1}, 8).status().message(),
      HasSubstr("the mesh dp_replicate_size (2) x dp_shard_size (2) x "
                "context_parallel_size (1) x tensor_parallel_size (1) = 4 does not equal "
                "the world size 8"));
  EXPECT_THAT(ResolveMeshShape({.dp_shard = 2, .cp = 1}, 8).status().message(),
              HasSubstr("at most one of dp_replicate_size, dp_shard_size, context_parallel_size, "
                        "tensor_parallel_size may be left unset (it is then inferred from the "
                        "world size 8); unset: dp_replicate_size, tensor_parallel_size"));
  EXPECT_THAT(
      ResolveMeshShape({.dp_replicate = 1, .dp_shard = 0, .cp = 1, .tp = 1}, 1).status().message(),
      HasSubstr("dp_shard_size must be a positive integer, got 0"));
  EXPECT_THAT(ResolveMeshShape({.dp_replicate = 1, .cp = 1, .tp = 3}, 8).status().message(),
              HasSubstr("cannot infer dp_shard_size: the world size 8 is not divisible by "
                        "dp_replicate_size (1) x context_parallel_size (1) x "
                        "tensor_parallel_size (3) = 3"));
}

TEST(MeshShapeTest, CoordinatesAreRowMajorWithTpInnermost) {
  const MeshShape s{2, 3, 2, 2};
  for (int r = 0; r < s.world_size(); ++r) {
    const MeshCoords c = CoordsOf(r, s);
    EXPECT_EQ(((c[0] * 3 + c[1]) * 2 + c[2]) * 2 + c[3], r);
    EXPECT_EQ(RankOf(c, s), r);
  }
  EXPECT_THAT(CoordsOf(17, s), ElementsAre(1, 1, 0, 1));
}

TEST(MeshShapeTest, GroupRanksOfDimensionsAndFlattenedSets) {
  const MeshShape s{2, 2, 2, 2};  // 16 ranks
  EXPECT_THAT(GroupRanks(5, s, {MeshDim::kTp}), ElementsAre(4, 5));
  EXPECT_THAT(GroupRanks(5, s, {MeshDim::kCp}), ElementsAre(5, 7));
  EXPECT_THAT(GroupRanks(5, s, {MeshDim::kDpShard}), ElementsAre(1, 5));
  EXPECT_THAT(GroupRanks(5, s, {MeshDim::kDpReplicate}), ElementsAre(5, 13));
  EXPECT_THAT(GroupRanks(5, s, {MeshDim::kDpShard, MeshDim::kCp}), ElementsAre(1, 3, 5, 7));
  EXPECT_THAT(GroupRanks(5, s, {MeshDim::kDpReplicate, MeshDim::kDpShard}),
              ElementsAre(1, 5, 9, 13));
  EXPECT_EQ(GroupName({MeshDim::kCp, MeshDim::kDpShard}), "dp_shard_cp");
}

TEST(DeviceMeshTest, EverySubGroupOfA2x2x2MeshComputesTheRightValues) {
  const MeshShape shape{2, 2, 2, 1};
  const std::vector<std::vector<MeshDim>> groups = {
      {MeshDim::kDpReplicate},
      {MeshDim::kDpShard},
      {MeshDim::kCp},
      {MeshDim::kTp},
      {MeshDim::kDpShard, MeshDim::kCp},
      {MeshDim::kDpReplicate, MeshDim::kDpShard},
      {MeshDim::kDpReplicate, MeshDim::kCp},
  };
  ASSERT_TRUE(RunOnThreadRanks(8, [&](int rank, Communicator& world) {
                absl::StatusOr<std::unique_ptr<DeviceMesh>> mesh = DeviceMesh::Create(world, shape);
                ASSERT_TRUE(mesh.ok());
                for (const std::vector<MeshDim>& dims : groups) {
                  absl::StatusOr<Communicator*> g = (*mesh)->Group(dims);
                  ASSERT_TRUE(g.ok()) << g.status();
                  const std::vector<int> members = GroupRanks(rank, shape, dims);
                  EXPECT_EQ((*g)->global_ranks(), members) << GroupName(dims);
                  EXPECT_EQ((*g)->name(), GroupName(dims));
                  // Sum of global ranks over the group, computed locally.
                  Tensor t = Tensor::Full({3}, rank, DType::kI32);
                  ASSERT_TRUE((*g)->AllReduce(t, ReduceOp::kSum)->Wait().ok());
                  int want = 0;
                  for (int m : members) want += m;
                  EXPECT_EQ(t.ToDoubles()[0], want) << GroupName(dims);
                  absl::Status st = RunCollectiveCases(**g, {DType::kF32, DType::kBF16});
                  EXPECT_TRUE(st.ok()) << GroupName(dims) << ": " << st;
                  // Cached: the same communicator the second time.
                  EXPECT_EQ(*(*mesh)->Group(dims), *g);
                }
                EXPECT_EQ(*(*mesh)->Group({MeshDim::kDpReplicate, MeshDim::kDpShard, MeshDim::kCp,
                                           MeshDim::kTp}),
                          &world);
              }).ok());
}

TEST(DeviceMeshTest, WrongWorldSize) {
  ASSERT_TRUE(RunOnThreadRanks(2, [&](int, Communicator& world) {
                EXPECT_THAT(DeviceMesh::Create(world, {2, 2, 1, 1}).status().message(),
                            HasSubstr("has 4 ranks but the world has 2"));
              }).ok());
}

TEST(TopologyTableTest, ListsCoordinates) {
  const std::string t =
      TopologyTable({{0, "hostA", 11, "cpu"}, {1, "hostB", 12, "cpu"}}, MeshShape{1, 1, 1, 2});
  EXPECT_THAT(t, HasSubstr("topology: 2 ranks, mesh dp_replicate 1 x dp_shard 1 x cp 1 x tp 2"));
  EXPECT_THAT(t, HasSubstr("     1  hostB        12  cpu                0        0   0   1"));
}

}  // namespace
}  // namespace loom::collectives
