// The NCCL backend: collectives for CUDA tensors on the communicator's own stream.
//
//   // Every rank of `cpu` (a Gloo communicator over the same ranks) calls:
//   LOOM_ASSIGN_OR_RETURN(std::unique_ptr<NcclCommunicator> nccl,
//                         NcclCommunicator::Create(cpu, store.WithPrefix("nccl/world/"),
//                                                  /*device=*/local_rank, options));
//   WorkHandle w = nccl->AllReduce(grads, ReduceOp::kSum);   // queued on the comm stream
//   LOOM_RETURN_IF_ERROR(w->Wait());   // the compute stream now waits for it (host does not)
//
// Ordering: each op first makes the comm stream wait for an event recorded on the device's
// compute stream (so it sees the producers' writes), runs there, and records a done event;
// Work::Wait() makes the compute stream wait for that event. Tensors stay referenced until the
// done event completes, so the caching allocator cannot hand their memory to compute early.
// Uneven all-gather is a group of broadcasts; SendRecv is one ncclGroupStart/End. Split uses
// ncclCommSplit (and splits the Gloo peer the same way, for membership and checks).
// The descriptor check runs over the Gloo peer (CPU), like PyTorch's debug wrapper; errors and
// timeouts abort the communicator (ncclCommAbort) through the watchdog.
//
// Without a GPU (this machine) Create fails with the reason; the dtype and op mappings below
// are what the tests can check.
#ifndef LOOM_COLLECTIVES_NCCL_COMMUNICATOR_H_
#define LOOM_COLLECTIVES_NCCL_COMMUNICATOR_H_

#include <nccl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "collectives/communicator.h"
#include "collectives/store.h"

namespace loom::collectives {

absl::StatusOr<ncclDataType_t> NcclDataType(DType dtype);
ncclRedOp_t NcclReduceOp(ReduceOp op);
// OkStatus for ncclSuccess, else an error naming `what` and NCCL's own message.
absl::Status NcclStatus(ncclResult_t result, const std::string& what);

class NcclCommunicator final : public Communicator {
 public:
  // Collective over the ranks of `cpu` (which must outlive this communicator).
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Create(Communicator& cpu, Store store,
                                                                  int device, CommOptions options);
  ~NcclCommunicator() override;

  int rank() const override;
  int size() const override;
  const std::string& name() const override;
  const char* backend() const override { return "nccl"; }
  DeviceType device_type() const override { return DeviceType::kCUDA; }
  const std::vector<int>& global_ranks() const override;
  uint64_t sequence_number() const override;

  WorkHandle AllReduce(const Tensor& tensor, ReduceOp op) override;
  WorkHandle AllGather(const Tensor& input, const Tensor& output) override;
  WorkHandle AllGatherUneven(const Tensor& input, const Tensor& output,
                             std::vector<int64_t> counts) override;
  WorkHandle ReduceScatter(const Tensor& input, const Tensor& output, ReduceOp op) override;
  WorkHandle Broadcast(const Tensor& tensor, int root) override;
  WorkHandle Send(const Tensor& tensor, int peer) override;
  WorkHandle Recv(const Tensor& tensor, int peer) override;
  WorkHandle SendRecv(std::vector<P2POp> ops) override;
  WorkHandle Barrier() override;
  absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key,
                                                      const std::string& name) override;

  struct Impl;

 private:
  explicit NcclCommunicator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_NCCL_COMMUNICATOR_H_
