#include "collectives/collective_check.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace loom::collectives {

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kAllReduce:
      return "all_reduce";
    case OpKind::kAllGather:
      return "all_gather";
    case OpKind::kAllGatherUneven:
      return "all_gather_uneven";
    case OpKind::kReduceScatter:
      return "reduce_scatter";
    case OpKind::kBroadcast:
      return "broadcast";
    case OpKind::kBarrier:
      return "barrier";
    case OpKind::kSplit:
      return "split";
    case OpKind::kSend:
      return "send";
    case OpKind::kRecv:
      return "recv";
  }
  return "unknown_op";
}

std::string Describe(const OpDescriptor& d) {
  if (d.magic != kDescriptorMagic) return "garbage (not a Loom collective descriptor)";
  std::string s = OpKindName(d.kind);
  if (d.kind == OpKind::kAllReduce || d.kind == OpKind::kReduceScatter) {
    absl::StrAppend(&s, "(", ReduceOpName(ReduceOp(d.reduce)), ")");
  }
  if (d.kind == OpKind::kBroadcast) absl::StrAppend(&s, "(root ", d.root, ")");
  if (d.kind == OpKind::kSend) absl::StrAppend(&s, "(to ", d.root, ")");
  if (d.kind == OpKind::kRecv) absl::StrAppend(&s, "(from ", d.root, ")");
  if (d.kind == OpKind::kSplit) absl::StrAppend(&s, "(color ", d.root, ")");
  if (d.has_tensor) {
    absl::StrAppend(&s, " ", DTypeName(DType(d.dtype)), " x ", d.count);
    if (d.out_count != d.count) absl::StrAppend(&s, " -> ", d.out_count);
  }
  absl::StrAppend(&s, " (seq ", d.seq, ")");
  return s;
}

std::string DescribeBytes(const OpDescriptor& d) {
  if (!d.has_tensor) return "0 B";
  const double bytes = double(d.count) * double(SizeOf(DType(d.dtype)));
  if (bytes >= 1 << 20) return absl::StrFormat("%.1f MiB", bytes / (1 << 20));
  if (bytes >= 1 << 10) return absl::StrFormat("%.1f KiB", bytes / (1 << 10));
  return absl::StrFormat("%.0f B", bytes);
}

uint64_t HashCounts(absl::Span<const int64_t> counts) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the 8-byte values
  for (int64_t c : counts) {
    for (int i = 0; i < 8; ++i) {
      h ^= (uint64_t(c) >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return h;
}

namespace {

bool SameCall(const OpDescriptor& a, const OpDescriptor& b) {
  return a.magic == b.magic && a.kind == b.kind && a.dtype == b.dtype && a.reduce == b.reduce &&
         a.has_tensor == b.has_tensor && a.root == b.root && a.seq == b.seq &&
         a.out_count == b.out_count && a.counts_hash == b.counts_hash &&
         (a.kind == OpKind::kAllGatherUneven || a.count == b.count);
}

}  // namespace

absl::Status CompareDescriptors(const OpDescriptor& mine, int my_rank,
                                const std::vector<OpDescriptor>& all, const std::string& group) {
  for (size_t r = 0; r < all.size(); ++r) {
    if (int(r) == my_rank || SameCall(mine, all[r])) continue;
    return absl::FailedPreconditionError(absl::StrFormat(
        "mismatched collectives on group '%s': rank %d called %s but rank %d called %s (every "
        "rank must issue the same collectives in the same order with the same sizes)",
        group, my_rank, Describe(mine), r, Describe(all[r])));
  }
  return absl::OkStatus();
}

absl::Status CompareP2P(const OpDescriptor& mine, int my_rank, const OpDescriptor& theirs, int peer,
                        const std::string& group) {
  const bool complementary = theirs.magic == kDescriptorMagic &&
                             ((mine.kind == OpKind::kSend && theirs.kind == OpKind::kRecv) ||
                              (mine.kind == OpKind::kRecv && theirs.kind == OpKind::kSend)) &&
                             theirs.root == my_rank && mine.dtype == theirs.dtype &&
                             mine.count == theirs.count && mine.seq == theirs.seq;
  if (complementary) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "mismatched point-to-point on group '%s': rank %d called %s but rank %d called %s", group,
      my_rank, Describe(mine), peer, Describe(theirs)));
}

bool IsCollectiveDType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
    case DType::kF64:
    case DType::kBF16:
    case DType::kF16:
    case DType::kI32:
    case DType::kI64:
      return true;
    default:
      return false;
  }
}

absl::Status CheckTensor(const char* op, const char* role, const Tensor& t, DeviceType device_type,
                         const char* backend) {
  if (!t.defined()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s is an undefined tensor", op, role));
  }
  const Device want{device_type, 0};
  if (t.device().type != device_type) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s is on %s but the %s backend needs %s tensors", op, role, t.device().ToString(),
        backend, device_type == DeviceType::kCPU ? "cpu" : "cuda"));
  }
  (void)want;
  if (!IsCollectiveDType(t.dtype())) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %s has dtype %s; supported: f32, f64, bf16, f16, i32, i64", op, role,
                        std::string(DTypeName(t.dtype()))));
  }
  if (!t.is_contiguous()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %s %s is not contiguous (strides %s); pass a contiguous copy", op,
                        role, t.ShapeString(), DimsString(t.strides())));
  }
  return absl::OkStatus();
}

absl::Status CheckReduce(const char* op, DType dtype, ReduceOp reduce) {
  if (reduce == ReduceOp::kAvg && !IsFloating(dtype)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: avg of %s tensors is not supported (integer division would truncate); use sum", op,
        std::string(DTypeName(dtype))));
  }
  return absl::OkStatus();
}

absl::Status CheckPeer(const char* op, int peer, int size, int rank) {
  if (peer < 0 || peer >= size || peer == rank) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: peer %d is not another rank of this group (rank %d of %d)", op, peer, rank, size));
  }
  return absl::OkStatus();
}

}  // namespace loom::collectives
