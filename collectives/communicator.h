// The communicator interface: one API for collectives over Gloo (CPU tensors) and NCCL (CUDA
// tensors), so every parallel feature can be tested on CPU ranks.
//
//   std::unique_ptr<Communicator> comm = ...;  // from Rendezvous / DeviceMesh
//   WorkHandle w = comm->AllReduce(grads, ReduceOp::kSum);    // returns at once
//   ...                                                         // overlap other work
//   LOOM_RETURN_IF_ERROR(w->Wait());                            // done, or why not
//
// Semantics (same on every backend):
//   AllReduce(t, op)              t = op over ranks of t, in place.
//   AllGather(in, out)            out = concat(in of rank 0, ..., in of rank n-1);
//                                 out.numel() == n * in.numel().
//   AllGatherUneven(in, out, c)   rank r contributes c[r] elements; out.numel() == sum(c).
//   ReduceScatter(in, out, op)    in.numel() == n * out.numel(); rank r receives the reduction
//                                 of every rank's r-th chunk.
//   Broadcast(t, root)            every t = root's t.
//   Send/Recv, SendRecv(ops)      point to point; SendRecv posts all ops at once (a ring step
//                                 sends right and receives left without deadlock).
//   Barrier()                     returns when every rank has called it.
// Operations run in issue order on the communicator's own worker (thread or CUDA stream), so
// every rank must issue the same collectives in the same order. Tensors must be contiguous,
// on the backend's device type, and of a supported dtype (f32, f64, bf16, f16, i32, i64);
// bf16/f16 reductions accumulate in f32 on the CPU. Bad arguments give a Work that is already
// failed with a message naming the op, the tensor and what was expected. Inputs and outputs
// must stay alive and untouched until Wait() returns.
//
// Before each collective the ranks compare a small descriptor (op, dtype, counts, root,
// sequence number) and fail with a message naming both sides on any difference; turn that off
// with CommOptions::check_collectives or LOOM_COLLECTIVE_CHECK=0 (measured in comm_bench).
// Every operation has a timeout; on a timeout or a dead peer the error names the op, its size,
// its sequence number and which peers did not arrive (see watchdog.h).
#ifndef LOOM_COLLECTIVES_COMMUNICATOR_H_
#define LOOM_COLLECTIVES_COMMUNICATOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/tensor.h"

namespace loom::collectives {

enum class ReduceOp : uint8_t { kSum, kAvg, kMax };
const char* ReduceOpName(ReduceOp op);  // "sum", "avg", "max"

// An asynchronous operation. Wait() may be called from any thread, any number of times.
class Work {
 public:
  virtual ~Work() = default;
  // Blocks until the operation finished (on CUDA: until the caller's compute stream is ordered
  // after it) and returns its status.
  virtual absl::Status Wait() = 0;
  virtual bool IsCompleted() = 0;
};
using WorkHandle = std::shared_ptr<Work>;

// A Work that has already finished with `status` (argument errors, world size 1 shortcuts).
WorkHandle CompletedWork(absl::Status status);

// One point-to-point transfer of a batch (Communicator::SendRecv).
struct P2POp {
  enum class Kind : uint8_t { kSend, kRecv };
  Kind kind;
  Tensor tensor;
  int peer;
  static P2POp Send(Tensor t, int peer) { return {Kind::kSend, std::move(t), peer}; }
  static P2POp Recv(Tensor t, int peer) { return {Kind::kRecv, std::move(t), peer}; }
};

struct CommOptions {
  std::string name = "world";  // shows in every error
  // Every operation's limit. Users: minutes (a slow step is not a failure); tests: seconds.
  absl::Duration timeout = absl::Seconds(300);
  // Compare collective descriptors across ranks before each operation.
  bool check_collectives = true;
  // Watchdog backstop: if an operation is still running at timeout + hang_grace (its own
  // timeout did not fire), print the report and _exit(kHangExitCode).
  bool exit_on_hang = true;
  absl::Duration hang_grace = absl::Seconds(10);
};
inline constexpr int kHangExitCode = 75;

// CommOptions with LOOM_COLLECTIVE_TIMEOUT (seconds) and LOOM_COLLECTIVE_CHECK (0/1) applied.
CommOptions CommOptionsFromEnv(CommOptions base = {});

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const std::string& name() const = 0;
  virtual const char* backend() const = 0;     // "gloo", "nccl"
  virtual DeviceType device_type() const = 0;  // where tensors must live
  // Global (world) rank of each member, indexed by rank in this communicator.
  virtual const std::vector<int>& global_ranks() const = 0;
  // Collectives issued so far (the next one gets this sequence number).
  virtual uint64_t sequence_number() const = 0;

  virtual WorkHandle AllReduce(const Tensor& tensor, ReduceOp op) = 0;
  virtual WorkHandle AllGather(const Tensor& input, const Tensor& output) = 0;
  virtual WorkHandle AllGatherUneven(const Tensor& input, const Tensor& output,
                                     std::vector<int64_t> counts) = 0;
  virtual WorkHandle ReduceScatter(const Tensor& input, const Tensor& output, ReduceOp op) = 0;
  virtual WorkHandle Broadcast(const Tensor& tensor, int root) = 0;
  virtual WorkHandle Send(const Tensor& tensor, int peer) = 0;
  virtual WorkHandle Recv(const Tensor& tensor, int peer) = 0;
  virtual WorkHandle SendRecv(std::vector<P2POp> ops) = 0;
  virtual WorkHandle Barrier() = 0;

  // Collective over every rank of this communicator: ranks passing the same `color` form a new
  // communicator named `name`, ordered by `key` (ties by rank). A negative color takes part in
  // the call but joins no group (returns nullptr).
  virtual absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key,
                                                              const std::string& name) = 0;
};

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_COMMUNICATOR_H_
