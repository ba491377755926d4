#include "collectives/gloo_transfers.h"

#include <algorithm>

#include "collectives/cpu_reduce.h"
#include "gloo/transport/unbound_buffer.h"
#include "runtime/status.h"

namespace loom::collectives {

uint64_t MakeSlot(uint8_t prefix, uint64_t tag) {
  return (uint64_t(prefix) << 56) | (tag & ((uint64_t(1) << 56) - 1));
}

// Ring reduce-scatter: at step s rank r sends its partial sum of chunk (r - s - 1) to the
// right and adds the left neighbour's partial sum of chunk (r - s - 2) to its own input
// chunk; after n - 1 steps it holds chunk r reduced over every rank. Two chunk-sized partial
// buffers alternate (one is sent while the other fills) and persist across ops, so a large
// reduce-scatter neither copies its whole input nor touches fresh pages. Each chunk moves in
// 1 MiB segments, all posted at once, so adding segment k overlaps receiving segment k + 1
// (one slot per step: a pair delivers a slot's messages in order).
void RingReduceScatter(gloo::Context* context, int rank, int size, const Tensor& in,
                       const Tensor& out, ReduceOp op, uint64_t seq,
                       std::chrono::milliseconds timeout, RingScratch& ring) {
  const int64_t chunk = out.numel();
  const DType acc = AccumulatorDType(in.dtype());
  const size_t es = SizeOf(acc), chunk_bytes = size_t(chunk) * es;
  const size_t in_es = in.element_size();
  const char* input = static_cast<const char*>(in.raw_data());
  for (std::vector<char>* b :
       {&ring.buffers[0], &ring.buffers[1], &ring.buffers[2], &ring.buffers[3]}) {
    if (b->size() < chunk_bytes) b->resize(chunk_bytes);
  }
  char* partial[2] = {ring.buffers[0].data(), ring.buffers[1].data()};
  char* incoming = ring.buffers[2].data();
  char* converted = ring.buffers[3].data();  // an input segment in the accumulator type
  int sending = 0;
  const int first = size > 1 ? ((rank - 1) % size + size) % size : rank;
  ToAccumulatorInto(in.dtype(), input + size_t(first) * size_t(chunk) * in_es, partial[0], chunk);
  if (size > 1 && chunk > 0) {
    auto send_buf = {context->createUnboundBuffer(partial[0], chunk_bytes),
                     context->createUnboundBuffer(partial[1], chunk_bytes)};
    auto in_buf = context->createUnboundBuffer(incoming, chunk_bytes);
    const int right = (rank + 1) % size, left = (rank + size - 1) % size;
    const int64_t segment = std::max<int64_t>(1, (int64_t(1) << 20) / int64_t(es));
    const int64_t segments = (chunk + segment - 1) / segment;
    for (int s = 0; s < size - 1; ++s) {
      const int recv_chunk = ((rank - s - 2) % size + size) % size;
      const uint64_t slot = MakeSlot(kRingSlot, (seq << 12) | uint64_t(s));
      auto& out_buf = *(send_buf.begin() + sending);
      for (int64_t k = 0; k < segments; ++k) {
        const int64_t begin = k * segment, n = std::min(segment, chunk - begin);
        in_buf->recv(left, slot, size_t(begin) * es, size_t(n) * es);
        out_buf->send(right, slot, size_t(begin) * es, size_t(n) * es);
      }
      char* result = partial[1 - sending];
      const char* mine = input + size_t(recv_chunk) * size_t(chunk) * in_es;
      for (int64_t k = 0; k < segments; ++k) {
        in_buf->waitRecv(timeout);
        const int64_t begin = k * segment, n = std::min(segment, chunk - begin);
        ToAccumulatorInto(in.dtype(), mine + size_t(begin) * in_es, converted, n);
        ReduceBinary(acc, result + size_t(begin) * es, converted, incoming + size_t(begin) * es, n,
                     op);
      }
      for (int64_t k = 0; k < segments; ++k) out_buf->waitSend(timeout);
      sending = 1 - sending;
    }
  }
  char* mine = partial[sending];
  if (op == ReduceOp::kAvg) DivideInPlace(acc, mine, chunk, size);
  FromAccumulator(in.dtype(), mine, out.raw_data(), chunk);
}

absl::Status RunTransfers(gloo::Context* context, int rank, const std::string& group,
                          std::vector<Transfer>& transfers, bool check,
                          std::chrono::milliseconds timeout) {
  auto tag = [](const Transfer& t) { return (t.desc.seq << 1) | (t.low_to_high ? 1 : 0); };
  if (check) {
    std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> outs, ins;
    for (Transfer& t : transfers) {
      ins.push_back(context->createUnboundBuffer(&t.theirs, sizeof(OpDescriptor)));
      ins.back()->recv(t.op.peer, MakeSlot(kP2PDescSlot, tag(t)));
      outs.push_back(context->createUnboundBuffer(&t.desc, sizeof(OpDescriptor)));
      outs.back()->send(t.op.peer, MakeSlot(kP2PDescSlot, tag(t)));
    }
    for (auto& b : ins) b->waitRecv(timeout);
    for (auto& b : outs) b->waitSend(timeout);
    for (Transfer& t : transfers) {
      LOOM_RETURN_IF_ERROR(CompareP2P(t.desc, rank, t.theirs, t.op.peer, group));
    }
  }
  std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> sends, recvs;
  for (Transfer& t : transfers) {
    if (t.op.tensor.nbytes() == 0) continue;
    auto b = context->createUnboundBuffer(t.op.tensor.raw_data(), t.op.tensor.nbytes());
    if (t.op.kind == P2POp::Kind::kRecv) {
      b->recv(t.op.peer, MakeSlot(kP2PDataSlot, tag(t)));
      recvs.push_back(std::move(b));
    } else {
      b->send(t.op.peer, MakeSlot(kP2PDataSlot, tag(t)));
      sends.push_back(std::move(b));
    }
  }
  for (auto& b : recvs) b->waitRecv(timeout);
  for (auto& b : sends) b->waitSend(timeout);
  return absl::OkStatus();
}

}  // namespace loom::collectives
