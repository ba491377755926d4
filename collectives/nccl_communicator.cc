#include "collectives/nccl_communicator.h"

#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "collectives/collective_check.h"
#include "collectives/rendezvous.h"
#include "collectives/watchdog.h"
#include "runtime/cuda/device.h"
#include "runtime/cuda/stream.h"

namespace loom::collectives {

absl::StatusOr<ncclDataType_t> NcclDataType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return ncclFloat32;
    case DType::kF64:
      return ncclFloat64;
    case DType::kBF16:
      return ncclBfloat16;
    case DType::kF16:
      return ncclFloat16;
    case DType::kI32:
      return ncclInt32;
    case DType::kI64:
      return ncclInt64;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "nccl: dtype ", DTypeName(dtype), " is not supported (f32, f64, bf16, f16, i32, i64)"));
  }
}

ncclRedOp_t NcclReduceOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
  }
  return ncclSum;
}

absl::Status NcclStatus(ncclResult_t result, const std::string& what) {
  if (result == ncclSuccess) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(what, ": NCCL error ", int(result), ": ", ncclGetErrorString(result)));
}

namespace {

// Completion of an op: the done event (shared with the monitor) and the status of enqueueing.
class NcclWork final : public Work {
 public:
  NcclWork(std::shared_ptr<cuda::Event> done, int device, bool host_sync,
           std::function<absl::Status()> async_error)
      : done_(std::move(done)),
        device_(device),
        host_sync_(host_sync),
        async_error_(std::move(async_error)) {}
  absl::Status Wait() override {
    if (host_sync_) {
      LOOM_RETURN_IF_ERROR(done_->Synchronize());
    } else {
      LOOM_ASSIGN_OR_RETURN(const cuda::Stream* compute, cuda::ComputeStream(device_));
      LOOM_RETURN_IF_ERROR(done_->MakeWait(*compute));
    }
    return async_error_();
  }
  bool IsCompleted() override {
    absl::StatusOr<bool> q = done_->Query();
    return !q.ok() || *q;
  }

 private:
  std::shared_ptr<cuda::Event> done_;
  int device_;
  bool host_sync_;
  std::function<absl::Status()> async_error_;
};

}  // namespace

struct NcclCommunicator::Impl {
  explicit Impl(Store s) : store(std::move(s)) {}
  Store store;
  Communicator* cpu = nullptr;            // the Gloo peer (membership, checks)
  std::unique_ptr<Communicator> own_cpu;  // set for split children
  int device = 0;
  CommOptions options;
  ncclComm_t comm = nullptr;
  std::optional<cuda::Stream> stream;
  Tensor barrier_buf;
  std::unique_ptr<Watchdog> watchdog;

  std::mutex mu;
  uint64_t next_seq = 0;
  int splits = 0;
  absl::Status failed;
  struct Pending {
    uint64_t seq;
    std::shared_ptr<cuda::Event> done;
    std::vector<Tensor> keep;  // alive until the comm stream is done with them
  };
  std::deque<Pending> pending;
  bool stop = false;
  std::thread monitor;

  absl::Status AsyncError() {
    std::lock_guard<std::mutex> lock(mu);
    return failed;
  }

  // Polls completion (ends the watchdog's op) and NCCL's asynchronous errors.
  void Monitor() {
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stop && pending.empty()) return;
        while (!pending.empty()) {
          absl::StatusOr<bool> q = pending.front().done->Query();
          if (q.ok() && !*q) break;
          watchdog->End(pending.front().seq);
          pending.pop_front();
        }
        ncclResult_t async = ncclSuccess;
        if (comm != nullptr && ncclCommGetAsyncError(comm, &async) == ncclSuccess &&
            async != ncclSuccess && failed.ok()) {
          failed = NcclStatus(async, absl::StrCat("nccl communicator '", options.name, "'"));
          ncclCommAbort(comm);
          comm = nullptr;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  WorkHandle Launch(OpDescriptor d, std::vector<Tensor> keep, bool host_sync,
                    const std::function<ncclResult_t(cudaStream_t)>& body, bool check = true) {
    static_assert(sizeof(OpDescriptor) % 4 == 0);
    std::lock_guard<std::mutex> lock(mu);
    if (!failed.ok()) return CompletedWork(failed);
    d.seq = next_seq++;
    if (check && options.check_collectives && cpu->size() > 1) {
      // Descriptors travel over the Gloo peer as raw bytes.
      Tensor mine_bytes = Tensor::FromVector(std::vector<int32_t>(sizeof(OpDescriptor) / 4),
                                             {int64_t(sizeof(OpDescriptor) / 4)});
      std::memcpy(mine_bytes.raw_data(), &d, sizeof(OpDescriptor));
      Tensor all_bytes =
          Tensor::Zeros({int64_t(sizeof(OpDescriptor) / 4) * cpu->size()}, DType::kI32);
      absl::Status st = cpu->AllGather(mine_bytes, all_bytes)->Wait();
      if (st.ok()) {
        std::vector<OpDescriptor> descs(static_cast<size_t>(cpu->size()));
        std::memcpy(descs.data(), all_bytes.raw_data(), descs.size() * sizeof(OpDescriptor));
        st = CompareDescriptors(d, cpu->rank(), descs, options.name);
      }
      if (!st.ok()) {
        failed = st;
        return CompletedWork(st);
      }
    }
    auto fail = [&](absl::Status st) {
      failed = watchdog->FailureReport(d, st, absl::ZeroDuration());
      return CompletedWork(failed);
    };
    absl::StatusOr<cuda::DeviceGuard> guard = cuda::DeviceGuard::Switch(device);
    if (!guard.ok()) return fail(guard.status());
    absl::StatusOr<const cuda::Stream*> compute = cuda::ComputeStream(device);
    if (!compute.ok()) return fail(compute.status());
    absl::StatusOr<cuda::Event> ready = cuda::Event::Create(device);
    if (!ready.ok()) return fail(ready.status());
    if (absl::Status st = ready->Record(**compute); !st.ok()) return fail(st);
    if (absl::Status st = ready->MakeWait(*stream); !st.ok()) return fail(st);
    watchdog->Begin(d);
    if (absl::Status st = NcclStatus(body(stream->get()), Describe(d)); !st.ok()) return fail(st);
    absl::StatusOr<cuda::Event> done = cuda::Event::Create(device);
    if (!done.ok()) return fail(done.status());
    if (absl::Status st = done->Record(*stream); !st.ok()) return fail(st);
    auto shared = std::make_shared<cuda::Event>(std::move(*done));
    pending.push_back(Pending{d.seq, shared, std::move(keep)});
    return std::make_shared<NcclWork>(shared, device, host_sync, [this] { return AsyncError(); });
  }

  absl::Status CheckCuda(const char* op, const char* role, const Tensor& t) const {
    LOOM_RETURN_IF_ERROR(CheckTensor(op, role, t, DeviceType::kCUDA, "nccl"));
    if (t.device().index != device) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: %s is on %s but this communicator uses cuda:%d", op, role,
                          t.device().ToString(), device));
    }
    return absl::OkStatus();
  }
};

#define LOOM_NCCL_ARG(expr)                     \
  do {                                          \
    if (absl::Status _st = (expr); !_st.ok()) { \
      return CompletedWork(_st);                \
    }                                           \
  } while (0)

absl::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(Communicator& cpu,
                                                                           Store store, int device,
                                                                           CommOptions options) {
  if (absl::Status st = cuda::CheckDevice(device); !st.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("nccl communicator '", options.name,
                                                      "' needs cuda:", device, ": ", st.message()));
  }
  auto impl = std::make_unique<Impl>(store);
  impl->cpu = &cpu;
  impl->device = device;
  impl->options = options;
  LOOM_ASSIGN_OR_RETURN(cuda::DeviceGuard guard, cuda::DeviceGuard::Switch(device));
  LOOM_ASSIGN_OR_RETURN(
      std::string id_bytes,
      ShareFromRoot(
          store, "unique_id", cpu.rank() == 0,
          []() -> absl::StatusOr<std::string> {
            ncclUniqueId id;
            LOOM_RETURN_IF_ERROR(NcclStatus(ncclGetUniqueId(&id), "ncclGetUniqueId"));
            return std::string(id.internal, sizeof(id.internal));
          },
          options.timeout));
  ncclUniqueId id;
  std::memcpy(id.internal, id_bytes.data(), std::min(id_bytes.size(), sizeof(id.internal)));
  LOOM_RETURN_IF_ERROR(
      NcclStatus(ncclCommInitRank(&impl->comm, cpu.size(), id, cpu.rank()), "ncclCommInitRank"));
  LOOM_ASSIGN_OR_RETURN(cuda::Stream stream, cuda::Stream::Create(device, /*priority=*/-1));
  impl->stream.emplace(std::move(stream));
  LOOM_ASSIGN_OR_RETURN(impl->barrier_buf,
                        Tensor::TryEmpty({1}, DType::kF32, Device::CUDA(device)));
  Impl* p = impl.get();
  impl->watchdog = std::make_unique<Watchdog>(store,
                                              WatchdogOptions{.group = options.name,
                                                              .rank = cpu.rank(),
                                                              .global_ranks = cpu.global_ranks(),
                                                              .timeout = options.timeout,
                                                              .exit_on_hang = options.exit_on_hang,
                                                              .hang_grace = options.hang_grace},
                                              [p] {
                                                std::lock_guard<std::mutex> lock(p->mu);
                                                if (p->comm != nullptr) ncclCommAbort(p->comm);
                                                p->comm = nullptr;
                                              });
  impl->monitor = std::thread([p] { p->Monitor(); });
  return std::unique_ptr<NcclCommunicator>(new NcclCommunicator(std::move(impl)));
}

NcclCommunicator::NcclCommunicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NcclCommunicator::~NcclCommunicator() {
  if (impl_->stream) (void)impl_->stream->Synchronize();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->monitor.join();
  impl_->watchdog.reset();
  if (impl_->comm != nullptr) ncclCommDestroy(impl_->comm);
}

int NcclCommunicator::rank() const { return impl_->cpu->rank(); }
int NcclCommunicator::size() const { return impl_->cpu->size(); }
const std::string& NcclCommunicator::name() const { return impl_->options.name; }
const std::vector<int>& NcclCommunicator::global_ranks() const {
  return impl_->cpu->global_ranks();
}
uint64_t NcclCommunicator::sequence_number() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->next_seq;
}

namespace {
OpDescriptor Desc(OpKind kind, const Tensor& in, int64_t out_count) {
  OpDescriptor d;
  d.kind = kind;
  d.has_tensor = 1;
  d.dtype = uint8_t(in.dtype());
  d.count = in.numel();
  d.out_count = out_count;
  return d;
}
}  // namespace

WorkHandle NcclCommunicator::AllReduce(const Tensor& t, ReduceOp op) {
  LOOM_NCCL_ARG(impl_->CheckCuda("all_reduce", "tensor", t));
  absl::StatusOr<ncclDataType_t> type = NcclDataType(t.dtype());
  LOOM_NCCL_ARG(type.status());
  OpDescriptor d = Desc(OpKind::kAllReduce, t, t.numel());
  d.reduce = uint8_t(op);
  ncclComm_t comm = impl_->comm;
  return impl_->Launch(d, {t}, false, [&](cudaStream_t s) {
    return ncclAllReduce(t.raw_data(), t.raw_data(), size_t(t.numel()), *type, NcclReduceOp(op),
                         comm, s);
  });
}

WorkHandle NcclCommunicator::AllGather(const Tensor& in, const Tensor& out) {
  LOOM_NCCL_ARG(impl_->CheckCuda("all_gather", "input", in));
  LOOM_NCCL_ARG(impl_->CheckCuda("all_gather", "output", out));
  if (in.dtype() != out.dtype() || out.numel() != in.numel() * size()) {
    return CompletedWork(absl::InvalidArgumentError(absl::StrFormat(
        "all_gather: output must have %d x %d elements of the input's dtype, got %s %s", size(),
        in.numel(), std::string(DTypeName(out.dtype())), out.ShapeString())));
  }
  absl::StatusOr<ncclDataType_t> type = NcclDataType(in.dtype());
  LOOM_NCCL_ARG(type.status());
  ncclComm_t comm = impl_->comm;
  return impl_->Launch(
      Desc(OpKind::kAllGather, in, out.numel()), {in, out}, false, [&](cudaStream_t s) {
        return ncclAllGather(in.raw_data(), out.raw_data(), size_t(in.numel()), *type, comm, s);
      });
}

WorkHandle NcclCommunicator::AllGatherUneven(const Tensor& in, const Tensor& out,
                                             std::vector<int64_t> counts) {
  LOOM_NCCL_ARG(impl_->CheckCuda("all_gather_uneven", "input", in));
  LOOM_NCCL_ARG(impl_->CheckCuda("all_gather_uneven", "output", out));
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  if (int(counts.size()) != size() || counts[size_t(rank())] != in.numel() ||
      out.numel() != total || in.dtype() != out.dtype()) {
    return CompletedWork(absl::InvalidArgumentError(absl::StrFormat(
        "all_gather_uneven: need %d counts with counts[%d] == %d and an output of sum(counts) "
        "elements of the input's dtype",
        size(), rank(), in.numel())));
  }
  absl::StatusOr<ncclDataType_t> type = NcclDataType(in.dtype());
  LOOM_NCCL_ARG(type.status());
  OpDescriptor d = Desc(OpKind::kAllGatherUneven, in, out.numel());
  d.counts_hash = HashCounts(counts);
  ncclComm_t comm = impl_->comm;
  const size_t es = in.element_size();
  return impl_->Launch(d, {in, out}, false, [&](cudaStream_t s) {
    ncclResult_t r = ncclGroupStart();
    int64_t offset = 0;
    for (int q = 0; q < size() && r == ncclSuccess; ++q) {
      const int64_t c = counts[size_t(q)];
      if (c > 0) {
        r = ncclBroadcast(in.raw_data(), static_cast<char*>(out.raw_data()) + size_t(offset) * es,
                          size_t(c), *type, q, comm, s);
      }
      offset += c;
    }
    const ncclResult_t end = ncclGroupEnd();
    return r != ncclSuccess ? r : end;
  });
}

WorkHandle NcclCommunicator::ReduceScatter(const Tensor& in, const Tensor& out, ReduceOp op) {
  LOOM_NCCL_ARG(impl_->CheckCuda("reduce_scatter", "input", in));
  LOOM_NCCL_ARG(impl_->CheckCuda("reduce_scatter", "output", out));
  if (in.dtype() != out.dtype() || in.numel() != out.numel() * size()) {
    return CompletedWork(absl::InvalidArgumentError(absl::StrFormat(
        "reduce_scatter: input must have %d x output elements of the output's dtype; got %s, %s",
        size(), in.ShapeString(), out.ShapeString())));
  }
  absl::StatusOr<ncclDataType_t> type = NcclDataType(in.dtype());
  LOOM_NCCL_ARG(type.status());
  OpDescriptor d = Desc(OpKind::kReduceScatter, in, out.numel());
  d.reduce = uint8_t(op);
  ncclComm_t comm = impl_->comm;
  return impl_->Launch(d, {in, out}, false, [&](cudaStream_t s) {
    return ncclReduceScatter(in.raw_data(), out.raw_data(), size_t(out.numel()), *type,
                             NcclReduceOp(op), comm, s);
  });
}

WorkHandle NcclCommunicator::Broadcast(const Tensor& t, int root) {
  LOOM_NCCL_ARG(impl_->CheckCuda("broadcast", "tensor", t));
  if (root < 0 || root >= size()) {
    return CompletedWork(absl::InvalidArgumentError(
        absl::StrFormat("broadcast: root %d is not a rank of this group (size %d)", root, size())));
  }
  absl::StatusOr<ncclDataType_t> type = NcclDataType(t.dtype());
  LOOM_NCCL_ARG(type.status());
  OpDescriptor d = Desc(OpKind::kBroadcast, t, t.numel());
  d.root = root;
  ncclComm_t comm = impl_->comm;
  return impl_->Launch(d, {t}, false, [&](cudaStream_t s) {
    return ncclBroadcast(t.raw_data(), t.raw_data(), size_t(t.numel()), *type, root, comm, s);
  });
}

WorkHandle NcclCommunicator::Send(const Tensor& t, int peer) {
  return SendRecv({P2POp::Send(t, peer)});
}

WorkHandle NcclCommunicator::Recv(const Tensor& t, int peer) {
  return SendRecv({P2POp::Recv(t, peer)});
}

// Point-to-point ops are matched by NCCL itself (same order on both sides); the descriptor
// check covers collectives only.
WorkHandle NcclCommunicator::SendRecv(std::vector<P2POp> ops) {
  std::vector<Tensor> keep;
  std::vector<ncclDataType_t> types;
  for (const P2POp& op : ops) {
    const char* what = op.kind == P2POp::Kind::kSend ? "send" : "recv";
    LOOM_NCCL_ARG(impl_->CheckCuda(what, "tensor", op.tensor));
    LOOM_NCCL_ARG(CheckPeer(what, op.peer, size(), rank()));
    absl::StatusOr<ncclDataType_t> type = NcclDataType(op.tensor.dtype());
    LOOM_NCCL_ARG(type.status());
    types.push_back(*type);
    keep.push_back(op.tensor);
  }
  OpDescriptor d;
  d.kind = ops.empty() || ops[0].kind == P2POp::Kind::kSend ? OpKind::kSend : OpKind::kRecv;
  ncclComm_t comm = impl_->comm;
  return impl_->Launch(
      d, keep, false,
      [&](cudaStream_t s) {
        ncclResult_t r = ncclGroupStart();
        for (size_t i = 0; i < ops.size() && r == ncclSuccess; ++i) {
          const Tensor& t = ops[i].tensor;
          r = ops[i].kind == P2POp::Kind::kSend
                  ? ncclSend(t.raw_data(), size_t(t.numel()), types[i], ops[i].peer, comm, s)
                  : ncclRecv(t.raw_data(), size_t(t.numel()), types[i], ops[i].peer, comm, s);
        }
        const ncclResult_t end = ncclGroupEnd();
        return r != ncclSuccess ? r : end;
      },
      /*check=*/false);
}

WorkHandle NcclCommunicator::Barrier() {
  ncclComm_t comm = impl_->comm;
  Tensor buf = impl_->barrier_buf;
  return impl_->Launch(OpDescriptor{}, {buf}, /*host_sync=*/true, [&](cudaStream_t s) {
    return ncclAllReduce(buf.raw_data(), buf.raw_data(), 1, ncclFloat32, ncclSum, comm, s);
  });
}

absl::StatusOr<std::unique_ptr<Communicator>> NcclCommunicator::Split(int color, int key,
                                                                      const std::string& name) {
  int index = 0;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    LOOM_RETURN_IF_ERROR(impl_->failed);
    index = impl_->splits++;
  }
  LOOM_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> cpu, impl_->cpu->Split(color, key, name));
  ncclComm_t child = nullptr;
  LOOM_RETURN_IF_ERROR(NcclStatus(
      ncclCommSplit(impl_->comm, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &child, nullptr),
      absl::StrCat("ncclCommSplit for group '", name, "'")));
  if (color < 0) return std::unique_ptr<Communicator>();
  auto impl = std::make_unique<Impl>(
      impl_->store.WithPrefix(absl::StrCat("split", index, "/", color, "/")));
  impl->own_cpu = std::move(cpu);
  impl->cpu = impl->own_cpu.get();
  impl->device = impl_->device;
  impl->options = impl_->options;
  impl->options.name = name;
  impl->comm = child;
  LOOM_ASSIGN_OR_RETURN(cuda::Stream stream, cuda::Stream::Create(impl->device, -1));
  impl->stream.emplace(std::move(stream));
  LOOM_ASSIGN_OR_RETURN(impl->barrier_buf,
                        Tensor::TryEmpty({1}, DType::kF32, Device::CUDA(impl->device)));
  Impl* p = impl.get();
  impl->watchdog =
      std::make_unique<Watchdog>(impl->store,
                                 WatchdogOptions{.group = name,
                                                 .rank = impl->cpu->rank(),
                                                 .global_ranks = impl->cpu->global_ranks(),
                                                 .timeout = impl->options.timeout,
                                                 .exit_on_hang = impl->options.exit_on_hang,
                                                 .hang_grace = impl->options.hang_grace},
                                 [p] {
                                   std::lock_guard<std::mutex> lock(p->mu);
                                   if (p->comm != nullptr) ncclCommAbort(p->comm);
                                   p->comm = nullptr;
                                 });
  impl->monitor = std::thread([p] { p->Monitor(); });
  return std::unique_ptr<Communicator>(new NcclCommunicator(std::move(impl)));
}

}  // namespace loom::collectives
