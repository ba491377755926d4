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

// Forward: O = softmax(scale * Q K^T, causal-masked) V and the stats (lse).
// Supports dense batches (no cu_seqlens), bf16/f16, any head dims cuDNN
// accepts, grouped-query heads, causal masks bottom-right aligned with
// seqlen_q <= seqlen_k. Other problems: InvalidArgument / Unimplemented.
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
