// Transfers the Gloo communicator builds itself from Gloo's unbound buffers: the ring
// reduce-scatter and batches of point-to-point sends and receives. Internal to
// gloo_communicator.cc (its worker thread calls these with the group's context).
//
//   RingReduceScatter(context.get(), rank, size, in, out, ReduceOp::kSum, seq, timeout, scratch);
//   LOOM_RETURN_IF_ERROR(RunTransfers(context.get(), rank, "world", transfers, true, timeout));
//
// Gloo reports I/O errors and timeouts by throwing; the caller turns them into a Status.
#ifndef LOOM_COLLECTIVES_GLOO_TRANSFERS_H_
#define LOOM_COLLECTIVES_GLOO_TRANSFERS_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "collectives/collective_check.h"
#include "collectives/communicator.h"
#include "gloo/context.h"

namespace loom::collectives {

// Slots of our own traffic, apart from Gloo's prefixes (0x01..0x08).
inline constexpr uint8_t kRingSlot = 0x51, kP2PDataSlot = 0x52, kP2PDescSlot = 0x53;
uint64_t MakeSlot(uint8_t prefix, uint64_t tag);

// Chunk-sized buffers kept across reduce-scatters (no fresh pages per op).
struct RingScratch {
  std::vector<char> buffers[4];
};

// in.numel() == size * out.numel(); `out` receives this rank's chunk reduced over the group.
void RingReduceScatter(gloo::Context* context, int rank, int size, const Tensor& in,
                       const Tensor& out, ReduceOp op, uint64_t seq,
                       std::chrono::milliseconds timeout, RingScratch& ring);

// One transfer of a batch: descriptors are swapped both ways first (when checking), so both
// ends of a mismatched pair report it.
struct Transfer {
  P2POp op;
  OpDescriptor desc;  // desc.seq: the pair's transfer number in this direction
  OpDescriptor theirs;
  bool low_to_high = false;
};

// Posts every receive and send of the batch at once, then waits for all of them.
absl::Status RunTransfers(gloo::Context* context, int rank, const std::string& group,
                          std::vector<Transfer>& transfers, bool check,
                          std::chrono::milliseconds timeout);

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_GLOO_TRANSFERS_H_
