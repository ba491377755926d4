// The cuDNN operation graphs of scaled-dot-product attention, as plain data.
//
// cuDNN's fused flash-attention engines recognise SDPA as a graph of generic
// backend operations (matmul, pointwise, reduction, reshape); the graphs here
// follow the composite construction of NVIDIA's cudnn-frontend for backends
// before 9.21 (this toolkit has cuDNN 9.19, whose SDPA_FWD operation has no
// causal mask). Building them is pure host code, so the tests check every
// graph structurally and run it through a host interpreter of the operations'
// documented semantics against the attention reference; attention_cudnn.cc
// lowers a GraphSpec to backend descriptors one to one.
//
//   LOOM_ASSIGN_OR_RETURN(GraphSpec g, BuildSdpaForwardGraph(problem));
//   LOOM_RETURN_IF_ERROR(ValidateGraph(g));
//
// Layouts: cuDNN tensors are [b, h, s, d] with explicit strides, so our
// [B, T, H, E] tensors map without copies: dims {B, H, T, E}, strides
// {batch, head, token, 1}. K enters the first matmul as K^T (dims and strides
// of the last two axes swapped), V^T likewise in the backward.
#ifndef LOOM_KERNELS_CUDA_ATTENTION_CUDNN_GRAPH_H_
#define LOOM_KERNELS_CUDA_ATTENTION_CUDNN_GRAPH_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/attention.h"

namespace loom::cuda::cudnn_graph {

enum class DataType : uint8_t { kFloat, kHalf, kBFloat16, kInt32, kBoolean };

// Unique ids of the tensors a caller binds to device memory (the variant pack).
enum Uid : int64_t {
  kQ = 1,
  kK,
  kV,
  kO,
  kStats,  // log-sum-exp, f32 [B, H, T, 1]
  kScale,  // by value
  kDO,
  kDQ,
  kDK,
  kDV,
  kSoftmaxSum,  // backward scratch: rowsum(dO * O), f32 [B, H, T, 1]
  kDQAccum,     // backward scratch: f32 dQ before the cast, [B, H, T, E]
  kNegInf,      // by value
  kOne,         // by value
  kSeqKvShift,  // by value, i32: S, for bottom-right causal masks when T != S
  kSeqQShift,   // by value, i32: T
  // Varlen (ragged) graphs: per-sequence lengths, i32 [b, 1, 1, 1], and the
  // element offset of each sequence's first token, i32 [b + 1, 1, 1, 1].
  kSeqQ,
  kSeqK,
  kRaggedQ,
  kRaggedK,
  kRaggedV,
  kRaggedO,
  kFirstVirtual = 100,
};

struct TensorSpec {
  int64_t uid = 0;
  std::string name;
  DataType dtype = DataType::kFloat;
  std::array<int64_t, 4> dims{}, strides{};
  bool is_virtual = false;
  bool by_value = false;
  double value = 0;  // of a by-value scalar
  // Ragged (packed varlen) tensors: element (b, h, s, d) is at offsets[b] +
  // h * strides[1] + s * strides[2] + d * strides[3] (the batch stride is
  // unused), with offsets the tensor `ragged_offset`. Rows at or past
  // seq_len[b] along `seq_axis` are padding: cuDNN neither reads nor writes
  // them (seq_len and seq_axis describe the layout for validation and the
  // tests' interpreter; cuDNN learns lengths from the matmul overrides).
  int64_t ragged_offset = 0;
  int64_t seq_len = 0;
  int seq_axis = -1;
};

enum class OpKind : uint8_t { kMatmul, kPointwise, kReduction, kReshape };
enum class PointwiseMode : uint8_t {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kExp,
  kLog,
  kIdentity,  // arithmetic
  kGenIndex,  // the index along `axis`
  kCmpGe,
  kCmpLt,
  kLogicalAnd,    // boolean results
  kBinarySelect,  // y = t ? x : b
};
enum class ReductionMode : uint8_t { kAdd, kMax };

struct OpSpec {
  OpKind kind = OpKind::kPointwise;
  std::string name;
  PointwiseMode pointwise = PointwiseMode::kIdentity;
  ReductionMode reduction = ReductionMode::kAdd;
  DataType compute = DataType::kFloat;
  int axis = -1;                // kGenIndex
  std::vector<int64_t> inputs;  // matmul: A, B; pointwise: x [, b [, t]]; reduction, reshape: x
  int64_t output = 0;
  // Matmul only: per-batch actual M, N, K (uids of i32 [b, 1, 1, 1] tensors;
  // 0 = the full dims); outputs outside M x N get 0 when `zero_padding`.
  int64_t m_override = 0, n_override = 0, k_override = 0;
  bool zero_padding = false;
};

// Scratch a graph needs besides the caller's tensors (non-virtual internals).
struct ScratchSpec {
  int64_t uid;
  size_t bytes;
};

struct GraphSpec {
  std::vector<TensorSpec> tensors;
  std::vector<OpSpec> ops;
  std::vector<ScratchSpec> scratch;
  const TensorSpec* Find(int64_t uid) const;
};

// Forward: O = softmax(scale * Q K^T, masked) V and the stats (lse).
// Supports bf16/f16, head dims that are multiples of 8 up to 256,
// grouped-query heads, causal masks bottom-right aligned with T <= S (per
// sequence), and varlen through cu_seqlens: num_seqs ragged sequences of at
// most max_seqlen tokens, with a padding mask, matmul overrides and the
// statistics in padded [num_seqs, H, max_seqlen_q, 1] scratch (kStats), which
// the launcher converts to and from our packed lse. Other problems:
// InvalidArgument / Unimplemented.
absl::StatusOr<GraphSpec> BuildSdpaForwardGraph(const AttentionProblem& p);

// Backward: dQ, dK, dV from Q, K, V, O, dO and the forward's stats.
// `deterministic` writes dQ straight from the matmul (cuDNN's dP-workspace
// variant) instead of through the f32 dQ accumulator.
absl::StatusOr<GraphSpec> BuildSdpaBackwardGraph(const AttentionBackwardProblem& p);

// Structural checks: unique uids; every op's inputs exist and its output is
// produced once; operand shapes agree for each op kind; every virtual tensor
// is produced before it is read and is read at least once; non-virtual
// tensors other than outputs are never written.
absl::Status ValidateGraph(const GraphSpec& g);

const char* DataTypeName(DataType t);

}  // namespace loom::cuda::cudnn_graph

#endif  // LOOM_KERNELS_CUDA_ATTENTION_CUDNN_GRAPH_H_
