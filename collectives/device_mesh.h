// The 4-D device mesh dp_replicate x dp_shard x cp x tp (tp innermost) and a communicator for
// any dimension or flattened set of dimensions.
//
//   LOOM_ASSIGN_OR_RETURN(MeshShape shape,
//                         ResolveMeshShape({.dp_shard = 4, .tp = 2}, world.size()));
//   LOOM_ASSIGN_OR_RETURN(std::unique_ptr<DeviceMesh> mesh, DeviceMesh::Create(world, shape));
//   LOOM_ASSIGN_OR_RETURN(Communicator* fsdp, mesh->Group({MeshDim::kDpShard, MeshDim::kCp}));
//   LOOM_ASSIGN_OR_RETURN(Communicator* tp, mesh->Group({MeshDim::kTp}));
//
// rank = ((r * S + s) * C + c) * T + t for coordinates (r, s, c, t) over sizes (R, S, C, T).
// The group over a set of dimensions holds the ranks that share this rank's coordinates on the
// other dimensions, ordered by global rank. Group() is collective over the whole world (every
// rank asks for the same dimensions in the same order: that is what NCCL's split needs); groups
// are created on first use and cached.
#ifndef LOOM_COLLECTIVES_DEVICE_MESH_H_
#define LOOM_COLLECTIVES_DEVICE_MESH_H_

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "collectives/communicator.h"

namespace loom::collectives {

enum class MeshDim : uint8_t { kDpReplicate = 0, kDpShard = 1, kCp = 2, kTp = 3 };
inline constexpr int kMeshDims = 4;
const char* MeshDimName(MeshDim d);       // "dp_replicate", "dp_shard", "cp", "tp"
const char* MeshDimConfigKey(MeshDim d);  // "dp_replicate_size", ..., "tensor_parallel_size"

struct MeshShape {
  int dp_replicate = 1, dp_shard = 1, cp = 1, tp = 1;
  int operator[](MeshDim d) const;
  int world_size() const { return dp_replicate * dp_shard * cp * tp; }
  std::string ToString() const;  // "dp_replicate 2 x dp_shard 2 x cp 1 x tp 2"
  friend bool operator==(const MeshShape&, const MeshShape&) = default;
};

// Sizes as configured; nullopt = unset.
struct MeshSizes {
  std::optional<int64_t> dp_replicate, dp_shard, cp, tp;
};

// Sizes must be positive; at most one may be unset, and it is inferred from the world size;
// the product must equal the world size. Errors name the config keys and the world size.
absl::StatusOr<MeshShape> ResolveMeshShape(const MeshSizes& sizes, int world_size);

using MeshCoords = std::array<int, kMeshDims>;
MeshCoords CoordsOf(int rank, const MeshShape& shape);
int RankOf(const MeshCoords& coords, const MeshShape& shape);
// The global ranks of `rank`'s group over `dims`, in increasing order.
std::vector<int> GroupRanks(int rank, const MeshShape& shape, const std::vector<MeshDim>& dims);
// "dp_shard_cp" for {kDpShard, kCp}; dimensions in mesh order.
std::string GroupName(const std::vector<MeshDim>& dims);

class DeviceMesh {
 public:
  // `world` must outlive the mesh; its size must equal the shape's product.
  static absl::StatusOr<std::unique_ptr<DeviceMesh>> Create(Communicator& world, MeshShape shape);

  const MeshShape& shape() const { return shape_; }
  int rank() const { return world_.rank(); }
  MeshCoords coords() const { return CoordsOf(world_.rank(), shape_); }
  Communicator& world() { return world_; }

  // The communicator of this rank's group over `dims` (non-empty). Collective over the world.
  absl::StatusOr<Communicator*> Group(std::vector<MeshDim> dims);

 private:
  DeviceMesh(Communicator& world, MeshShape shape) : world_(world), shape_(shape) {}
  Communicator& world_;
  MeshShape shape_;
  std::map<unsigned, std::unique_ptr<Communicator>> groups_;  // by bit mask of dims
};

// The table rank 0 prints at start: rank, host, pid, device, mesh coordinates.
struct TopologyRow {
  int rank = 0;
  std::string host;
  int pid = 0;
  std::string device;
};
std::string TopologyTable(const std::vector<TopologyRow>& rows, const MeshShape& shape);

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_DEVICE_MESH_H_
