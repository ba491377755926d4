#include "collectives/device_mesh.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/status.h"

namespace loom::collectives {
namespace {

constexpr MeshDim kAllDims[] = {MeshDim::kDpReplicate, MeshDim::kDpShard, MeshDim::kCp,
                                MeshDim::kTp};

unsigned Mask(const std::vector<MeshDim>& dims) {
  unsigned m = 0;
  for (MeshDim d : dims) m |= 1u << unsigned(d);
  return m;
}

}  // namespace

const char* MeshDimName(MeshDim d) {
  switch (d) {
    case MeshDim::kDpReplicate:
      return "dp_replicate";
    case MeshDim::kDpShard:
      return "dp_shard";
    case MeshDim::kCp:
      return "cp";
    case MeshDim::kTp:
      return "tp";
  }
  return "?";
}

const char* MeshDimConfigKey(MeshDim d) {
  switch (d) {
    case MeshDim::kDpReplicate:
      return "dp_replicate_size";
    case MeshDim::kDpShard:
      return "dp_shard_size";
    case MeshDim::kCp:
      return "context_parallel_size";
    case MeshDim::kTp:
      return "tensor_parallel_size";
  }
  return "?";
}

int MeshShape::operator[](MeshDim d) const {
  switch (d) {
    case MeshDim::kDpReplicate:
      return dp_replicate;
    case MeshDim::kDpShard:
      return dp_shard;
    case MeshDim::kCp:
      return cp;
    case MeshDim::kTp:
      return tp;
  }
  return 1;
}

std::string MeshShape::ToString() const {
  return absl::StrFormat("dp_replicate %d x dp_shard %d x cp %d x tp %d", dp_replicate, dp_shard,
                         cp, tp);
}

absl::StatusOr<MeshShape> ResolveMeshShape(const MeshSizes& sizes, int world_size) {
  const std::optional<int64_t> given[kMeshDims] = {sizes.dp_replicate, sizes.dp_shard, sizes.cp,
                                                   sizes.tp};
  std::vector<std::string> unset, terms;
  int64_t product = 1;
  for (MeshDim d : kAllDims) {
    const std::optional<int64_t>& v = given[int(d)];
    if (!v) {
      unset.push_back(MeshDimConfigKey(d));
      continue;
    }
    if (*v < 1) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s must be a positive integer, got %d", MeshDimConfigKey(d), *v));
    }
    product *= *v;
    terms.push_back(absl::StrFormat("%s (%d)", MeshDimConfigKey(d), *v));
  }
  if (unset.size() > 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "at most one of dp_replicate_size, dp_shard_size, context_parallel_size, "
        "tensor_parallel_size may be left unset (it is then inferred from the world size %d); "
        "unset: %s",
        world_size, absl::StrJoin(unset, ", ")));
  }
  const std::string shown = terms.empty() ? "1" : absl::StrJoin(terms, " x ");
  int64_t inferred = 1;
  if (unset.size() == 1) {
    if (world_size % product != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("cannot infer %s: the world size %d is not divisible by %s = %d",
                          unset[0], world_size, shown, product));
    }
    inferred = world_size / product;
  } else if (product != world_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the mesh %s = %d does not equal the world size %d (the number of ranks)",
                        shown, product, world_size));
  }
  auto pick = [&](MeshDim d) { return int(given[int(d)] ? *given[int(d)] : inferred); };
  return MeshShape{.dp_replicate = pick(MeshDim::kDpReplicate),
                   .dp_shard = pick(MeshDim::kDpShard),
                   .cp = pick(MeshDim::kCp),
                   .tp = pick(MeshDim::kTp)};
}

MeshCoords CoordsOf(int rank, const MeshShape& shape) {
  MeshCoords c{};
  for (int d = kMeshDims - 1; d >= 0; --d) {
    const int size = shape[MeshDim(d)];
    c[size_t(d)] = rank % size;
    rank /= size;
  }
  return c;
}

int RankOf(const MeshCoords& coords, const MeshShape& shape) {
  int rank = 0;
  for (int d = 0; d < kMeshDims; ++d) rank = rank * shape[MeshDim(d)] + coords[size_t(d)];
  return rank;
}

std::vector<int> GroupRanks(int rank, const MeshShape& shape, const std::vector<MeshDim>& dims) {
  const unsigned mask = Mask(dims);
  const MeshCoords mine = CoordsOf(rank, shape);
  std::vector<int> out;
  for (int r = 0; r < shape.world_size(); ++r) {
    const MeshCoords c = CoordsOf(r, shape);
    bool same = true;
    for (int d = 0; d < kMeshDims; ++d) {
      if (!(mask & (1u << d)) && c[size_t(d)] != mine[size_t(d)]) same = false;
    }
    if (same) out.push_back(r);
  }
  return out;
}

std::string GroupName(const std::vector<MeshDim>& dims) {
  const unsigned mask = Mask(dims);
  std::vector<std::string> names;
  for (MeshDim d : kAllDims) {
    if (mask & (1u << unsigned(d))) names.push_back(MeshDimName(d));
  }
  return absl::StrJoin(names, "_");
}

absl::StatusOr<std::unique_ptr<DeviceMesh>> DeviceMesh::Create(Communicator& world,
                                                               MeshShape shape) {
  if (shape.world_size() != world.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("device mesh %s has %d ranks but the world has %d", shape.ToString(),
                        shape.world_size(), world.size()));
  }
  return std::unique_ptr<DeviceMesh>(new DeviceMesh(world, shape));
}

absl::StatusOr<Communicator*> DeviceMesh::Group(std::vector<MeshDim> dims) {
  if (dims.empty()) return absl::InvalidArgumentError("DeviceMesh::Group: no dimensions given");
  const unsigned mask = Mask(dims);
  if (mask == 0xfu) return &world_;
  if (auto it = groups_.find(mask); it != groups_.end()) return it->second.get();
  // Color: this rank's coordinates on the other dimensions; key: global rank (mesh order).
  const MeshCoords c = coords();
  int color = 0;
  for (int d = 0; d < kMeshDims; ++d) {
    if (!(mask & (1u << d))) color = color * shape_[MeshDim(d)] + c[size_t(d)];
  }
  LOOM_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm,
                        world_.Split(color, world_.rank(), GroupName(dims)));
  Communicator* raw = comm.get();
  groups_[mask] = std::move(comm);
  return raw;
}

std::string TopologyTable(const std::vector<TopologyRow>& rows, const MeshShape& shape) {
  size_t host_width = 4, device_width = 6;
  for (const TopologyRow& r : rows) {
    host_width = std::max(host_width, r.host.size());
    device_width = std::max(device_width, r.device.size());
  }
  std::string out = absl::StrFormat("topology: %d ranks, mesh %s\n", rows.size(), shape.ToString());
  absl::StrAppendFormat(&out, "  %4s  %-*s  %8s  %-*s  %12s %8s %3s %3s\n", "rank", int(host_width),
                        "host", "pid", int(device_width), "device", "dp_replicate", "dp_shard",
                        "cp", "tp");
  for (const TopologyRow& r : rows) {
    const MeshCoords c = CoordsOf(r.rank, shape);
    absl::StrAppendFormat(&out, "  %4d  %-*s  %8d  %-*s  %12d %8d %3d %3d\n", r.rank,
                          int(host_width), r.host, r.pid, int(device_width), r.device, c[0], c[1],
                          c[2], c[3]);
  }
  return out;
}

}  // namespace loom::collectives
