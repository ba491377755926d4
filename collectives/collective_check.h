// Up-front argument checks and the cross-rank descriptor comparison shared by every backend.
//
//   LOOM_RETURN_IF_ERROR(CheckTensor("all_reduce", "tensor", t, DeviceType::kCPU, "gloo"));
//   OpDescriptor mine = {.kind = OpKind::kAllReduce, .dtype = uint8_t(t.dtype()), ...};
//   ... exchange descriptors (an all-gather of sizeof(OpDescriptor) bytes) ...
//   LOOM_RETURN_IF_ERROR(CompareDescriptors(mine, rank, all, "world"));
//
// A descriptor is a plain struct sent as raw bytes; all ranks run the same binary.
#ifndef LOOM_COLLECTIVES_COLLECTIVE_CHECK_H_
#define LOOM_COLLECTIVES_COLLECTIVE_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "collectives/communicator.h"
#include "runtime/tensor.h"

namespace loom::collectives {

enum class OpKind : uint8_t {
  kAllReduce = 1,
  kAllGather,
  kAllGatherUneven,
  kReduceScatter,
  kBroadcast,
  kBarrier,
  kSplit,
  kSend,
  kRecv,
};
const char* OpKindName(OpKind kind);  // "all_reduce", ...

inline constexpr uint32_t kDescriptorMagic = 0x4d4f4f4c;  // "LOOM"

struct OpDescriptor {
  uint32_t magic = kDescriptorMagic;
  OpKind kind = OpKind::kBarrier;
  uint8_t dtype = 0;   // DType, when the op has tensors
  uint8_t reduce = 0;  // ReduceOp, for reductions
  uint8_t has_tensor = 0;
  int32_t root = -1;  // broadcast root; point to point: the peer
  uint64_t seq = 0;
  int64_t count = 0;         // input elements
  int64_t out_count = 0;     // output elements
  uint64_t counts_hash = 0;  // uneven all-gather: hash of the counts vector
};

// "all_reduce(sum) bf16 x 1024 (seq 7)".
std::string Describe(const OpDescriptor& d);
// Size in bytes of the op's input for reports.
std::string DescribeBytes(const OpDescriptor& d);

uint64_t HashCounts(absl::Span<const int64_t> counts);

// OkStatus when every rank's descriptor equals `mine`, else an error naming this rank's call
// and the first rank whose call differs.
absl::Status CompareDescriptors(const OpDescriptor& mine, int my_rank,
                                const std::vector<OpDescriptor>& all, const std::string& group);
// Point to point: my send must meet the peer's recv of the same dtype and count (and the
// reverse), at the same pair sequence number.
absl::Status CompareP2P(const OpDescriptor& mine, int my_rank, const OpDescriptor& theirs, int peer,
                        const std::string& group);

bool IsCollectiveDType(DType dtype);
// Defined, contiguous, of a supported dtype and on `device_type`; errors name op, role, backend.
absl::Status CheckTensor(const char* op, const char* role, const Tensor& t, DeviceType device_type,
                         const char* backend);
// Integer dtypes have no average (truncating silently would be a trap).
absl::Status CheckReduce(const char* op, DType dtype, ReduceOp reduce);
absl::Status CheckPeer(const char* op, int peer, int size, int rank);

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_COLLECTIVE_CHECK_H_
