// The Gloo backend: collectives over TCP for CPU tensors.
//
//   LOOM_ASSIGN_OR_RETURN(std::unique_ptr<GlooCommunicator> comm,
//                         GlooCommunicator::Create(store.WithPrefix("gloo/world/"), rank, size,
//                                                  {.bind_address = "127.0.0.1"}));
//   LOOM_RETURN_IF_ERROR(comm->AllReduce(t, ReduceOp::kSum)->Wait());
//
// Every rank connects a full mesh of TCP pairs through the store (the group's prefix keeps
// groups apart). Operations run one at a time, in issue order, on the communicator's worker
// thread. All-reduce, all-gather and broadcast use Gloo's algorithms; reduce-scatter is a ring
// over Gloo's unbound buffers (n - 1 steps, each rank ends with its fully reduced chunk);
// bf16/f16 reductions accumulate in f32. After the first failure the communicator is unusable:
// every later op fails at once with the original report. Destruction ends with a barrier (a
// peer still finishing a collective would otherwise see "connection closed").
#ifndef LOOM_COLLECTIVES_GLOO_COMMUNICATOR_H_
#define LOOM_COLLECTIVES_GLOO_COMMUNICATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "collectives/communicator.h"
#include "collectives/store.h"

namespace gloo::transport {
class Device;
}

namespace loom::collectives {

struct GlooOptions {
  CommOptions comm;
  // This host's address as peers reach it (127.0.0.1 on one host).
  std::string bind_address = "127.0.0.1";
  // Global rank of each member (default: 0..size-1). Used in reports.
  std::vector<int> global_ranks;
  // Share one TCP device (listener + event loop) across a process's groups.
  std::shared_ptr<gloo::transport::Device> device;
};

class GlooCommunicator final : public Communicator {
 public:
  // Collective over the `size` ranks using `store`'s prefix: waits (up to the timeout) until
  // every rank arrived, naming the missing ones otherwise, then connects.
  static absl::StatusOr<std::unique_ptr<GlooCommunicator>> Create(Store store, int rank, int size,
                                                                  GlooOptions options);
  ~GlooCommunicator() override;

  int rank() const override;
  int size() const override;
  const std::string& name() const override;
  const char* backend() const override { return "gloo"; }
  DeviceType device_type() const override { return DeviceType::kCPU; }
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
  explicit GlooCommunicator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_GLOO_COMMUNICATOR_H_
