#include "collectives/gloo_communicator.h"

#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "collectives/collective_check.h"
#include "collectives/cpu_reduce.h"
#include "collectives/gloo_transfers.h"
#include "collectives/socket.h"
#include "collectives/watchdog.h"
#include "gloo/allgather.h"
#include "gloo/allgatherv.h"
#include "gloo/allreduce.h"
#include "gloo/barrier.h"
#include "gloo/broadcast.h"
#include "gloo/rendezvous/context.h"
#include "gloo/rendezvous/store.h"
#include "gloo/transport/tcp/device.h"
#include "gloo/transport/unbound_buffer.h"

namespace loom::collectives {
namespace {

std::chrono::milliseconds Ms(absl::Duration d) { return absl::ToChronoMilliseconds(d); }

// Our store behind Gloo's rendezvous interface (Gloo reports failures by exceptions).
class GlooStore final : public gloo::rendezvous::Store {
 public:
  GlooStore(collectives::Store store, absl::Duration timeout)
      : store_(std::move(store)), timeout_(timeout) {}
  void set(const std::string& key, const std::vector<char>& data) override {
    Throw(store_.Set(key, std::string(data.begin(), data.end())));
  }
  std::vector<char> get(const std::string& key) override {
    absl::StatusOr<std::string> v = store_.Get(key, timeout_);
    Throw(v.status());
    return std::vector<char>(v->begin(), v->end());
  }
  void wait(const std::vector<std::string>& keys) override { Throw(store_.Wait(keys, timeout_)); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& t) override {
    Throw(store_.Wait(keys, absl::FromChrono(t)));
  }

 private:
  static void Throw(const absl::Status& st) {
    if (!st.ok()) throw gloo::IoException(std::string(st.message()));
  }
  collectives::Store store_;
  absl::Duration timeout_;
};

class QueuedWork final : public Work {
 public:
  absl::Status Wait() override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    return status_;
  }
  bool IsCompleted() override {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }
  void Finish(absl::Status status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      status_ = std::move(status);
      done_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  absl::Status status_;
};

absl::Status FromException(const std::exception& e) {
  const std::string what = e.what();
  if (what.find("Timed out") != std::string::npos || what.find("timed out") != std::string::npos) {
    return absl::DeadlineExceededError(what);
  }
  return absl::UnavailableError(what);
}

OpDescriptor TensorOp(OpKind kind, const Tensor& in, int64_t out_count) {
  OpDescriptor d;
  d.kind = kind;
  d.has_tensor = 1;
  d.dtype = uint8_t(in.dtype());
  d.count = in.numel();
  d.out_count = out_count;
  return d;
}

template <typename Fn>
void DispatchAccumulator(DType acc, Fn&& fn) {
  switch (acc) {
    case DType::kF32:
      fn(float{});
      return;
    case DType::kF64:
      fn(double{});
      return;
    case DType::kI32:
      fn(int32_t{});
      return;
    default:
      fn(int64_t{});
      return;
  }
}

}  // namespace

struct GlooCommunicator::Impl {
  explicit Impl(collectives::Store s) : store(std::move(s)) {}
  collectives::Store store;
  int rank = 0, size = 1;
  GlooOptions options;
  std::shared_ptr<gloo::Context> context;
  std::unique_ptr<Watchdog> watchdog;

  struct Task {
    OpDescriptor desc;
    bool collective = true;
    std::function<absl::Status(const OpDescriptor&)> body;
    std::shared_ptr<QueuedWork> work;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Task> queue;
  bool stop = false;
  uint64_t next_seq = 0;
  std::map<int, uint64_t> send_seq, recv_seq;  // point-to-point transfers per peer
  std::thread worker;
  absl::Status failed;  // sticky; worker thread only
  RingScratch ring;     // reduce-scatter buffers, reused (worker thread only)

  const std::string& name() const { return options.comm.name; }

  WorkHandle Submit(OpDescriptor desc, bool collective,
                    std::function<absl::Status(const OpDescriptor&)> body) {
    auto work = std::make_shared<QueuedWork>();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (collective) desc.seq = next_seq++;
      queue.push_back(Task{desc, collective, std::move(body), work});
    }
    cv.notify_one();
    return work;
  }

  void Run() {
    while (true) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || !queue.empty(); });
        if (queue.empty()) return;
        task = std::move(queue.front());
        queue.pop_front();
      }
      task.work->Finish(Execute(task));
    }
  }

  absl::Status Execute(Task& task) {
    if (!failed.ok()) {
      return absl::Status(failed.code(), absl::StrCat("communicator '", name(),
                                                      "' is unusable after an earlier "
                                                      "failure: ",
                                                      failed.message()));
    }
    if (watchdog) watchdog->Begin(task.desc);
    const absl::Time start = absl::Now();
    absl::Status st;
    try {
      if (task.collective && options.comm.check_collectives && size > 1) {
        st = ExchangeDescriptors(task.desc);
      }
      if (st.ok()) st = task.body(task.desc);
    } catch (const std::exception& e) {
      st = FromException(e);
    }
    if (!st.ok()) {
      if (watchdog) st = watchdog->FailureReport(task.desc, st, absl::Now() - start);
      failed = st;
      std::fprintf(stderr, "loom collectives: %s\n", std::string(st.message()).c_str());
      std::fflush(stderr);
    }
    if (watchdog) watchdog->End(task.desc.seq);
    return st;
  }

  uint32_t Tag(uint64_t seq, int k) const { return uint32_t(seq * 2 + uint64_t(k)); }

  absl::Status ExchangeDescriptors(const OpDescriptor& mine) {
    std::vector<OpDescriptor> all(static_cast<size_t>(this->size));
    gloo::AllgatherOptions o(context);
    o.setInput(reinterpret_cast<char*>(const_cast<OpDescriptor*>(&mine)), sizeof(OpDescriptor));
    o.setOutput(reinterpret_cast<char*>(all.data()), sizeof(OpDescriptor) * all.size());
    o.setTag(Tag(mine.seq, 0));
    o.setTimeout(Ms(options.comm.timeout));
    gloo::allgather(o);
    return CompareDescriptors(mine, rank, all, name());
  }

  // ---- Operation bodies (worker thread).

  absl::Status DoAllReduce(const Tensor& t, ReduceOp op, uint64_t seq) {
    const int64_t n = t.numel();
    const DType acc = AccumulatorDType(t.dtype());
    std::vector<char> converted;
    void* ptr = t.raw_data();
    if (acc != t.dtype()) {
      converted = ToAccumulator(t.dtype(), ptr, n);
      ptr = converted.data();
    }
    if (size > 1 && n > 0) {
      gloo::AllreduceOptions o(context);
      DispatchAccumulator(acc, [&](auto tag) {
        using T = decltype(tag);
        o.setOutput(static_cast<T*>(ptr), size_t(n));
      });
      o.setReduceFunction([acc, op](void* c, const void* a, const void* b, size_t count) {
        ReduceBinary(acc, c, a, b, int64_t(count), op);
      });
      o.setTag(Tag(seq, 1));
      o.setTimeout(Ms(options.comm.timeout));
      gloo::allreduce(o);
    }
    if (op == ReduceOp::kAvg) DivideInPlace(acc, ptr, n, size);
    if (acc != t.dtype()) FromAccumulator(t.dtype(), ptr, t.raw_data(), n);
    return absl::OkStatus();
  }

  absl::Status DoAllGather(const Tensor& in, const Tensor& out, const std::vector<int64_t>& counts,
                           uint64_t seq) {
    const size_t es = in.element_size();
    if (size == 1) {
      if (in.nbytes() > 0) std::memcpy(out.raw_data(), in.raw_data(), in.nbytes());
      return absl::OkStatus();
    }
    if (out.numel() == 0) return absl::OkStatus();
    std::vector<size_t> bytes;
    for (int64_t c : counts) bytes.push_back(size_t(c) * es);
    // Gloo needs a buffer even for an empty contribution.
    char dummy = 0;
    char* in_ptr = in.nbytes() > 0 ? static_cast<char*>(in.raw_data()) : &dummy;
    gloo::AllgathervOptions o(context);
    o.setInput(in_ptr, in.nbytes());
    o.setOutput(static_cast<char*>(out.raw_data()), bytes);
    o.setTag(Tag(seq, 1));
    o.setTimeout(Ms(options.comm.timeout));
    gloo::allgatherv(o);
    return absl::OkStatus();
  }

  absl::Status DoReduceScatter(const Tensor& in, const Tensor& out, ReduceOp op, uint64_t seq) {
    RingReduceScatter(context.get(), rank, size, in, out, op, seq, Ms(options.comm.timeout), ring);
    return absl::OkStatus();
  }

  absl::Status DoBroadcast(const Tensor& t, int root, uint64_t seq) {
    if (size == 1 || t.nbytes() == 0) return absl::OkStatus();
    gloo::BroadcastOptions o(context);
    o.setOutput(static_cast<char*>(t.raw_data()), t.nbytes());
    o.setRoot(root);
    o.setTag(Tag(seq, 1));
    o.setTimeout(Ms(options.comm.timeout));
    gloo::broadcast(o);
    return absl::OkStatus();
  }

  absl::Status DoBarrier(uint64_t seq) {
    if (size == 1) return absl::OkStatus();
    gloo::BarrierOptions o(context);
    o.setTag(Tag(seq, 1));
    o.setTimeout(Ms(options.comm.timeout));
    gloo::barrier(o);
    return absl::OkStatus();
  }

  absl::Status DoSendRecv(std::vector<Transfer>& transfers) {
    return RunTransfers(context.get(), rank, name(), transfers, options.comm.check_collectives,
                        Ms(options.comm.timeout));
  }
};

// ---------------------------------------------------------------- public API

absl::StatusOr<std::unique_ptr<GlooCommunicator>> GlooCommunicator::Create(Store store, int rank,
                                                                           int size,
                                                                           GlooOptions options) {
  if (size < 1 || rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "gloo communicator '%s': rank %d is not in [0, %d)", options.comm.name, rank, size));
  }
  if (options.global_ranks.empty()) {
    options.global_ranks.resize(size_t(size));
    std::iota(options.global_ranks.begin(), options.global_ranks.end(), 0);
  }
  auto impl = std::make_unique<Impl>(store);
  impl->rank = rank;
  impl->size = size;
  const std::string what = absl::StrCat("connecting group '", options.comm.name, "'");
  LOOM_RETURN_IF_ERROR(ArriveAndWait(store, "arrive", rank, size, options.comm.timeout, what,
                                     absl::StrCat(HostName(), ":", getpid())));
  if (size > 1) {
    try {
      if (!options.device) {
        gloo::transport::tcp::attr attr;
        attr.hostname = options.bind_address;
        options.device = gloo::transport::tcp::CreateDevice(attr);
      }
      auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
      context->setTimeout(Ms(options.comm.timeout));
      GlooStore gloo_store(store.WithPrefix("mesh/"), options.comm.timeout);
      context->connectFullMesh(gloo_store, options.device);
      impl->context = context;
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat(what, " (rank ", rank, " of ", size, ", address ",
                                                 options.bind_address, "): ", e.what()));
    }
  }
  impl->options = std::move(options);
  impl->watchdog = std::make_unique<Watchdog>(
      store, WatchdogOptions{.group = impl->options.comm.name,
                             .rank = rank,
                             .global_ranks = impl->options.global_ranks,
                             .timeout = impl->options.comm.timeout,
                             .exit_on_hang = impl->options.comm.exit_on_hang,
                             .hang_grace = impl->options.comm.hang_grace});
  impl->worker = std::thread([p = impl.get()] { p->Run(); });
  return std::unique_ptr<GlooCommunicator>(new GlooCommunicator(std::move(impl)));
}

GlooCommunicator::GlooCommunicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GlooCommunicator::~GlooCommunicator() {
  // Peers may still be finishing the last collective: meet them before closing the pairs.
  if (impl_->size > 1) (void)Barrier()->Wait();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  impl_->worker.join();
  impl_->watchdog.reset();
}

int GlooCommunicator::rank() const { return impl_->rank; }
int GlooCommunicator::size() const { return impl_->size; }
const std::string& GlooCommunicator::name() const { return impl_->name(); }
const std::vector<int>& GlooCommunicator::global_ranks() const {
  return impl_->options.global_ranks;
}
uint64_t GlooCommunicator::sequence_number() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->next_seq;
}

#define LOOM_CHECK_ARG(expr)                    \
  do {                                          \
    if (absl::Status _st = (expr); !_st.ok()) { \
      return CompletedWork(_st);                \
    }                                           \
  } while (0)

WorkHandle GlooCommunicator::AllReduce(const Tensor& tensor, ReduceOp op) {
  LOOM_CHECK_ARG(CheckTensor("all_reduce", "tensor", tensor, DeviceType::kCPU, "gloo"));
  LOOM_CHECK_ARG(CheckReduce("all_reduce", tensor.dtype(), op));
  OpDescriptor d = TensorOp(OpKind::kAllReduce, tensor, tensor.numel());
  d.reduce = uint8_t(op);
  Impl* p = impl_.get();
  return p->Submit(d, true, [p, tensor, op](const OpDescriptor& d) {
    return p->DoAllReduce(tensor, op, d.seq);
  });
}

WorkHandle GlooCommunicator::AllGather(const Tensor& input, const Tensor& output) {
  LOOM_CHECK_ARG(CheckTensor("all_gather", "input", input, DeviceType::kCPU, "gloo"));
  LOOM_CHECK_ARG(CheckTensor("all_gather", "output", output, DeviceType::kCPU, "gloo"));
  if (input.dtype() != output.dtype() || output.numel() != input.numel() * size()) {
    return CompletedWork(absl::InvalidArgumentError(absl::StrFormat(
        "all_gather: output must be %s with %d x %d = %d elements (input %s %s), got %s %s",
        std::string(DTypeName(input.dtype())), size(), input.numel(), size() * input.numel(),
        std::string(DTypeName(input.dtype())), input.ShapeString(),
        std::string(DTypeName(output.dtype())), output.ShapeString())));
  }
  OpDescriptor d = TensorOp(OpKind::kAllGather, input, output.numel());
  Impl* p = impl_.get();
  std::vector<int64_t> counts(size_t(size()), input.numel());
  return p->Submit(d, true, [p, input, output, counts](const OpDescriptor& d) {
    return p->DoAllGather(input, output, counts, d.seq);
  });
}

WorkHandle GlooCommunicator::AllGatherUneven(const Tensor& input, const Tensor& output,
                                             std::vector<int64_t> counts) {
  LOOM_CHECK_ARG(CheckTensor("all_gather_uneven", "input", input, DeviceType::kCPU, "gloo"));
  LOOM_CHECK_ARG(CheckTensor("all_gather_uneven", "output", output, DeviceType::kCPU, "gloo"));
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  if (int(counts.size()) != size() || counts[size_t(rank())] != input.numel() ||
      output.numel() != total || input.dtype() != output.dtype() ||
      std::any_of(counts.begin(), counts.end(), [](int64_t c) { return c < 0; })) {
    return CompletedWork(absl::InvalidArgumentError(absl::StrFormat(
        "all_gather_uneven: need one count >= 0 per rank (%d), counts[%d] == input elements "
        "(%d) and an output of the same dtype with sum(counts) elements; got %d counts "
        "summing to %d, output %s %s",
        size(), rank(), input.numel(), counts.size(), total, std::string(DTypeName(output.dtype())),
        output.ShapeString())));
  }
  OpDescriptor d = TensorOp(OpKind::kAllGatherUneven, input, output.numel());
  d.counts_hash = HashCounts(counts);
  Impl* p = impl_.get();
  return p->Submit(d, true, [p, input, output, counts](const OpDescriptor& d) {
    return p->DoAllGather(input, output, counts, d.seq);
  });
}

WorkHandle GlooCommunicator::ReduceScatter(const Tensor& input, const Tensor& output, ReduceOp op) {
  LOOM_CHECK_ARG(CheckTensor("reduce_scatter", "input", input, DeviceType::kCPU, "gloo"));
  LOOM_CHECK_ARG(CheckTensor("reduce_scatter", "output", output, DeviceType::kCPU, "gloo"));
  LOOM_CHECK_ARG(CheckReduce("reduce_scatter", input.dtype(), op));
  if (input.dtype() != output.dtype() || input.numel() != output.numel() * size()) {
    return CompletedWork(absl::InvalidArgumentError(absl::StrFormat(
        "reduce_scatter: input must have %d x output elements of the output's dtype; got input "
        "%s %s, output %s %s",
        size(), std::string(DTypeName(input.dtype())), input.ShapeString(),
        std::string(DTypeName(output.dtype())), output.ShapeString())));
  }
  OpDescriptor d = TensorOp(OpKind::kReduceScatter, input, output.numel());
  d.reduce = uint8_t(op);
  Impl* p = impl_.get();
  return p->Submit(d, true, [p, input, output, op](const OpDescriptor& d) {
    return p->DoReduceScatter(input, output, op, d.seq);
  });
}

WorkHandle GlooCommunicator::Broadcast(const Tensor& tensor, int root) {
  LOOM_CHECK_ARG(CheckTensor("broadcast", "tensor", tensor, DeviceType::kCPU, "gloo"));
  if (root < 0 || root >= size()) {
    return CompletedWork(absl::InvalidArgumentError(
        absl::StrFormat("broadcast: root %d is not a rank of this group (size %d)", root, size())));
  }
  OpDescriptor d = TensorOp(OpKind::kBroadcast, tensor, tensor.numel());
  d.root = root;
  Impl* p = impl_.get();
  return p->Submit(d, true, [p, tensor, root](const OpDescriptor& d) {
    return p->DoBroadcast(tensor, root, d.seq);
  });
}

WorkHandle GlooCommunicator::Barrier() {
  Impl* p = impl_.get();
  return p->Submit(OpDescriptor{}, true,
                   [p](const OpDescriptor& d) { return p->DoBarrier(d.seq); });
}

WorkHandle GlooCommunicator::Send(const Tensor& tensor, int peer) {
  std::vector<P2POp> ops;
  ops.push_back(P2POp::Send(tensor, peer));
  return SendRecv(std::move(ops));
}

WorkHandle GlooCommunicator::Recv(const Tensor& tensor, int peer) {
  std::vector<P2POp> ops;
  ops.push_back(P2POp::Recv(tensor, peer));
  return SendRecv(std::move(ops));
}

WorkHandle GlooCommunicator::SendRecv(std::vector<P2POp> ops) {
  Impl* p = impl_.get();
  auto transfers = std::make_shared<std::vector<Transfer>>();
  for (P2POp& op : ops) {
    const char* what = op.kind == P2POp::Kind::kSend ? "send" : "recv";
    LOOM_CHECK_ARG(CheckTensor(what, "tensor", op.tensor, DeviceType::kCPU, "gloo"));
    LOOM_CHECK_ARG(CheckPeer(what, op.peer, size(), rank()));
  }
  OpDescriptor summary;  // what the watchdog shows: the first transfer
  {
    std::lock_guard<std::mutex> lock(p->mu);
    for (P2POp& op : ops) {
      Transfer t;
      const bool send = op.kind == P2POp::Kind::kSend;
      t.desc = TensorOp(send ? OpKind::kSend : OpKind::kRecv, op.tensor, op.tensor.numel());
      t.desc.root = op.peer;
      t.desc.seq = send ? p->send_seq[op.peer]++ : p->recv_seq[op.peer]++;
      t.low_to_high = send ? rank() < op.peer : op.peer < rank();
      t.op = std::move(op);
      transfers->push_back(std::move(t));
    }
  }
  if (!transfers->empty()) summary = transfers->front().desc;
  return p->Submit(summary, false,
                   [p, transfers](const OpDescriptor&) { return p->DoSendRecv(*transfers); });
}

absl::StatusOr<std::unique_ptr<Communicator>> GlooCommunicator::Split(int color, int key,
                                                                      const std::string& name) {
  Impl* p = impl_.get();
  auto result = std::make_shared<std::unique_ptr<Communicator>>();
  OpDescriptor d;
  d.kind = OpKind::kSplit;
  WorkHandle w = p->Submit(d, true, [p, color, key, name, result](const OpDescriptor& d) {
    std::vector<int32_t> mine = {color, key}, all(size_t(2 * p->size));
    if (p->size > 1) {
      gloo::AllgatherOptions o(p->context);
      o.setInput(mine.data(), 2);
      o.setOutput(all.data(), all.size());
      o.setTag(p->Tag(d.seq, 1));
      o.setTimeout(Ms(p->options.comm.timeout));
      gloo::allgather(o);
    } else {
      all = mine;
    }
    if (color < 0) return absl::OkStatus();
    std::vector<std::pair<int, int>> members;  // (key, parent rank)
    for (int r = 0; r < p->size; ++r) {
      if (all[size_t(2 * r)] == color) members.push_back({all[size_t(2 * r + 1)], r});
    }
    std::sort(members.begin(), members.end());
    GlooOptions child;
    child.comm = p->options.comm;
    child.comm.name = name;
    child.bind_address = p->options.bind_address;
    child.device = p->options.device;
    int new_rank = 0;
    for (size_t i = 0; i < members.size(); ++i) {
      if (members[i].second == p->rank) new_rank = int(i);
      child.global_ranks.push_back(p->options.global_ranks[size_t(members[i].second)]);
    }
    LOOM_ASSIGN_OR_RETURN(*result,
                          Create(p->store.WithPrefix(absl::StrCat("split", d.seq, "/", color, "/")),
                                 new_rank, int(members.size()), std::move(child)));
    return absl::OkStatus();
  });
  LOOM_RETURN_IF_ERROR(w->Wait());
  return std::move(*result);
}

}  // namespace loom::collectives
