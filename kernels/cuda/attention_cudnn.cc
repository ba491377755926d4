// cuDNN SDPA (see attention_cudnn.h): a GraphSpec lowered one to one to
// cuDNN 9 backend descriptors (tensor, pointwise, matmul, reduction, reshape
// operations; operation graph; heuristics mode A; the first engine config
// whose execution plan finalizes), cached per device and graph signature, and
// executed with a variant pack that binds the caller's pointers by uid.
#include "kernels/cuda/attention_cudnn.h"

#include <cudnn.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "kernels/cuda/attention_cudnn_graph.h"
#include "kernels/cuda/attention_cudnn_varlen.h"
#include "runtime/status.h"

namespace loom::cuda {
namespace {

using namespace cudnn_graph;  // NOLINT: the graph vocabulary, used throughout

absl::Status CudnnStatus(cudnnStatus_t s, const char* call) {
  if (s == CUDNN_STATUS_SUCCESS) return absl::OkStatus();
  const std::string msg =
      absl::StrCat("cuDNN attention: ", call, " failed: ", cudnnGetErrorString(s));
  if (s == CUDNN_STATUS_NOT_SUPPORTED) return absl::UnimplementedError(msg);
  if (s == CUDNN_STATUS_BAD_PARAM) return absl::InvalidArgumentError(msg);
  if (s == CUDNN_STATUS_NOT_INITIALIZED) return absl::FailedPreconditionError(msg);
  return absl::InternalError(msg);
}
#define LOOM_CUDNN_RETURN_IF_ERROR(call) LOOM_RETURN_IF_ERROR(CudnnStatus((call), #call))

cudnnDataType_t ToCudnn(DataType t) {
  switch (t) {
    case DataType::kHalf:
      return CUDNN_DATA_HALF;
    case DataType::kBFloat16:
      return CUDNN_DATA_BFLOAT16;
    case DataType::kInt32:
      return CUDNN_DATA_INT32;
    case DataType::kBoolean:
      return CUDNN_DATA_BOOLEAN;
    case DataType::kFloat:
      break;
  }
  return CUDNN_DATA_FLOAT;
}

cudnnPointwiseMode_t ToCudnn(PointwiseMode m) {
  switch (m) {
    case PointwiseMode::kAdd:
      return CUDNN_POINTWISE_ADD;
    case PointwiseMode::kSub:
      return CUDNN_POINTWISE_SUB;
    case PointwiseMode::kMul:
      return CUDNN_POINTWISE_MUL;
    case PointwiseMode::kDiv:
      return CUDNN_POINTWISE_DIV;
    case PointwiseMode::kExp:
      return CUDNN_POINTWISE_EXP;
    case PointwiseMode::kLog:
      return CUDNN_POINTWISE_LOG;
    case PointwiseMode::kIdentity:
      return CUDNN_POINTWISE_IDENTITY;
    case PointwiseMode::kGenIndex:
      return CUDNN_POINTWISE_GEN_INDEX;
    case PointwiseMode::kCmpGe:
      return CUDNN_POINTWISE_CMP_GE;
    case PointwiseMode::kCmpLt:
      return CUDNN_POINTWISE_CMP_LT;
    case PointwiseMode::kLogicalAnd:
      return CUDNN_POINTWISE_LOGICAL_AND;
    case PointwiseMode::kBinarySelect:
      return CUDNN_POINTWISE_BINARY_SELECT;
  }
  return CUDNN_POINTWISE_IDENTITY;
}

struct DescDeleter {
  void operator()(cudnnBackendDescriptor_t d) const { cudnnBackendDestroyDescriptor(d); }
};
using Desc = std::unique_ptr<std::remove_pointer_t<cudnnBackendDescriptor_t>, DescDeleter>;

// A finalized execution plan and every descriptor it was built from.
struct Plan {
  std::vector<Desc> keep;
  cudnnBackendDescriptor_t plan = nullptr;
  int64_t workspace = 0;
};

class Lowering {
 public:
  explicit Lowering(cudnnHandle_t handle) : handle_(handle) {}

  absl::StatusOr<std::unique_ptr<Plan>> Build(const GraphSpec& g) {
    for (const TensorSpec& t : g.tensors) LOOM_RETURN_IF_ERROR(Tensor(t));
    std::vector<cudnnBackendDescriptor_t> ops;
    for (const OpSpec& op : g.ops) {
      LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t d, Operation(op));
      ops.push_back(d);
    }
    LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t graph,
                          Make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR));
    LOOM_RETURN_IF_ERROR(
        Set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_));
    LOOM_RETURN_IF_ERROR(Set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                             int64_t(ops.size()), ops.data()));
    LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(graph));

    LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t heur, Make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR));
    const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    LOOM_RETURN_IF_ERROR(
        Set(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph));
    LOOM_RETURN_IF_ERROR(Set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode));
    LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(heur));
    int64_t count = 0;
    LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendGetAttribute(
        heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
    std::vector<cudnnBackendDescriptor_t> configs;
    for (int64_t i = 0; i < count; ++i) {
      LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t c, Make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
      configs.push_back(c);
    }
    int64_t returned = 0;
    if (count > 0) {
      LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                                          &returned, configs.data()));
    }
    std::string last_error = "the heuristics returned no engine configuration";
    for (int64_t i = 0; i < returned; ++i) {
      LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t plan,
                            Make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR));
      LOOM_RETURN_IF_ERROR(
          Set(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_));
      LOOM_RETURN_IF_ERROR(Set(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &configs[size_t(i)]));
      const cudnnStatus_t s = cudnnBackendFinalize(plan);
      if (s != CUDNN_STATUS_SUCCESS) {
        last_error = absl::StrCat("engine config ", i, ": ", cudnnGetErrorString(s));
        continue;
      }
      auto out = std::make_unique<Plan>();
      int64_t n = 0;
      LOOM_CUDNN_RETURN_IF_ERROR(
          cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                                   1, &n, &out->workspace));
      out->plan = plan;
      out->keep = std::move(keep_);
      return out;
    }
    return absl::UnimplementedError(
        absl::StrCat("cuDNN attention: no engine runs this graph (", last_error, ")"));
  }

 private:
  absl::StatusOr<cudnnBackendDescriptor_t> Make(cudnnBackendDescriptorType_t type) {
    cudnnBackendDescriptor_t d = nullptr;
    LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendCreateDescriptor(type, &d));
    keep_.emplace_back(d);
    return d;
  }
  static absl::Status Set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                          cudnnBackendAttributeType_t type, int64_t count, const void* value) {
    return CudnnStatus(cudnnBackendSetAttribute(d, name, type, count, value),
                       "cudnnBackendSetAttribute");
  }
  absl::Status SetDesc(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name, int64_t uid) {
    return Set(d, name, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &tensors_.at(uid));
  }

  absl::Status Tensor(const TensorSpec& t) {
    LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t d, Make(CUDNN_BACKEND_TENSOR_DESCRIPTOR));
    const cudnnDataType_t type = ToCudnn(t.dtype);
    const int64_t alignment = t.by_value ? 4 : 16;
    const bool is_virtual = t.is_virtual, by_value = t.by_value;
    LOOM_RETURN_IF_ERROR(Set(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type));
    LOOM_RETURN_IF_ERROR(Set(d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, t.dims.data()));
    LOOM_RETURN_IF_ERROR(Set(d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, t.strides.data()));
    LOOM_RETURN_IF_ERROR(Set(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &t.uid));
    LOOM_RETURN_IF_ERROR(Set(d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment));
    LOOM_RETURN_IF_ERROR(Set(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual));
    LOOM_RETURN_IF_ERROR(Set(d, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value));
    if (t.ragged_offset != 0) {  // the offsets tensor precedes its users in GraphSpec order
      LOOM_RETURN_IF_ERROR(SetDesc(d, CUDNN_ATTR_TENSOR_RAGGED_OFFSET_DESC, t.ragged_offset));
    }
    LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(d));
    tensors_[t.uid] = d;
    return absl::OkStatus();
  }

  absl::StatusOr<cudnnBackendDescriptor_t> Operation(const OpSpec& op) {
    const cudnnDataType_t compute = ToCudnn(op.compute);
    switch (op.kind) {
      case OpKind::kMatmul: {
        LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t mm, Make(CUDNN_BACKEND_MATMUL_DESCRIPTOR));
        const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
        LOOM_RETURN_IF_ERROR(Set(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32));
        if (op.zero_padding) {
          const double zero = 0.0;
          LOOM_RETURN_IF_ERROR(
              Set(mm, CUDNN_ATTR_MATMUL_PADDING_VALUE, CUDNN_TYPE_DOUBLE, 1, &zero));
        }
        LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(mm));
        LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t d,
                              Make(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR));
        LOOM_RETURN_IF_ERROR(SetDesc(d, CUDNN_ATTR_OPERATION_MATMUL_ADESC, op.inputs[0]));
        LOOM_RETURN_IF_ERROR(SetDesc(d, CUDNN_ATTR_OPERATION_MATMUL_BDESC, op.inputs[1]));
        LOOM_RETURN_IF_ERROR(SetDesc(d, CUDNN_ATTR_OPERATION_MATMUL_CDESC, op.output));
        LOOM_RETURN_IF_ERROR(
            Set(d, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm));
        const std::pair<cudnnBackendAttributeName_t, int64_t> overrides[] = {
            {CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, op.m_override},
            {CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC, op.n_override},
            {CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC, op.k_override}};
        for (const auto& [name, uid] : overrides) {
          if (uid != 0) LOOM_RETURN_IF_ERROR(SetDesc(d, name, uid));
        }
        LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(d));
        return d;
      }
      case OpKind::kPointwise: {
        LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t pw,
                              Make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR));
        const cudnnPointwiseMode_t mode = ToCudnn(op.pointwise);
        LOOM_RETURN_IF_ERROR(
            Set(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode));
        LOOM_RETURN_IF_ERROR(
            Set(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &compute));
        if (op.axis >= 0) {
          const int64_t axis = op.axis;
          LOOM_RETURN_IF_ERROR(Set(pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis));
        }
        LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(pw));
        LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t d,
                              Make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR));
        LOOM_RETURN_IF_ERROR(Set(d, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR,
                                 CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw));
        LOOM_RETURN_IF_ERROR(SetDesc(d, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, op.inputs[0]));
        if (op.inputs.size() > 1) {
          LOOM_RETURN_IF_ERROR(SetDesc(d, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, op.inputs[1]));
        }
        if (op.inputs.size() > 2) {
          LOOM_RETURN_IF_ERROR(SetDesc(d, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, op.inputs[2]));
        }
        LOOM_RETURN_IF_ERROR(SetDesc(d, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, op.output));
        LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(d));
        return d;
      }
      case OpKind::kReduction: {
        LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t red,
                              Make(CUDNN_BACKEND_REDUCTION_DESCRIPTOR));
        const cudnnReduceTensorOp_t mode =
            op.reduction == ReductionMode::kMax ? CUDNN_REDUCE_TENSOR_MAX : CUDNN_REDUCE_TENSOR_ADD;
        const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
        LOOM_RETURN_IF_ERROR(
            Set(red, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &mode));
        LOOM_RETURN_IF_ERROR(
            Set(red, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f32));
        LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(red));
        LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t d,
                              Make(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR));
        LOOM_RETURN_IF_ERROR(SetDesc(d, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, op.inputs[0]));
        LOOM_RETURN_IF_ERROR(SetDesc(d, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, op.output));
        LOOM_RETURN_IF_ERROR(
            Set(d, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &red));
        LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(d));
        return d;
      }
      case OpKind::kReshape: {
        LOOM_ASSIGN_OR_RETURN(cudnnBackendDescriptor_t d,
                              Make(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR));
        LOOM_RETURN_IF_ERROR(SetDesc(d, CUDNN_ATTR_OPERATION_RESHAPE_XDESC, op.inputs[0]));
        LOOM_RETURN_IF_ERROR(SetDesc(d, CUDNN_ATTR_OPERATION_RESHAPE_YDESC, op.output));
        LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(d));
        return d;
      }
    }
    return absl::InternalError("cuDNN attention: unknown operation kind");
  }

  cudnnHandle_t handle_;
  std::vector<Desc> keep_;
  absl::flat_hash_map<int64_t, cudnnBackendDescriptor_t> tensors_;
};

// What two graphs must share to share a plan (scalar values are bound at execution).
std::string Signature(const GraphSpec& g) {
  std::string s;
  for (const TensorSpec& t : g.tensors) {
    absl::StrAppend(&s, t.uid, ":", int(t.dtype), ":", t.dims[0], ",", t.dims[1], ",", t.dims[2],
                    ",", t.dims[3], "/", t.strides[0], ",", t.strides[1], ",", t.strides[2], ",",
                    t.strides[3], t.is_virtual ? "v" : "", t.by_value ? "s" : "", "r",
                    t.ragged_offset, ";");
  }
  for (const OpSpec& op : g.ops) {
    absl::StrAppend(&s, int(op.kind), int(op.pointwise), int(op.reduction), op.axis, "(");
    for (int64_t u : op.inputs) absl::StrAppend(&s, u, ",");
    absl::StrAppend(&s, ")", op.output, "o", op.m_override, ",", op.n_override, ",", op.k_override,
                    op.zero_padding ? "z" : "", ";");
  }
  return s;
}

struct DeviceState {
  cudnnHandle_t handle = nullptr;
  absl::flat_hash_map<std::string, std::unique_ptr<Plan>> plans;
  absl::flat_hash_map<cudaStream_t, std::pair<void*, size_t>> workspaces;
};

absl::Mutex g_mu;
absl::flat_hash_map<int, DeviceState>& States() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* states = new absl::flat_hash_map<int, DeviceState>();  // lives until exit
  return *states;
}

constexpr size_t kAlign = 256;
size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

using ScratchMap = absl::flat_hash_map<int64_t, void*>;
using Hook = std::function<absl::Status(const ScratchMap& scratch)>;

// Runs `g` with the caller's pointers; scratch and the plan's workspace come
// from the (device, stream) workspace. `before` and `after` enqueue work on
// the same stream around the graph (the varlen layout adapters).
absl::Status Execute(const GraphSpec& g, const absl::flat_hash_map<int64_t, void*>& pointers,
                     cudaStream_t stream, const Hook& before = nullptr,
                     const Hook& after = nullptr) {
  int device = -1, count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaSuccess && count == 0) err = cudaErrorNoDevice;
  if (err == cudaSuccess) err = cudaGetDevice(&device);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return absl::FailedPreconditionError(absl::StrCat("cuDNN attention: no usable CUDA device (",
                                                      cudaGetErrorName(err), ": ",
                                                      cudaGetErrorString(err), ")"));
  }
  absl::MutexLock lock(&g_mu);  // the handle is shared: one execution at a time
  DeviceState& state = States()[device];
  if (state.handle == nullptr) LOOM_CUDNN_RETURN_IF_ERROR(cudnnCreate(&state.handle));
  const std::string key = Signature(g);
  auto it = state.plans.find(key);
  if (it == state.plans.end()) {
    LOOM_ASSIGN_OR_RETURN(std::unique_ptr<Plan> plan, Lowering(state.handle).Build(g));
    it = state.plans.emplace(key, std::move(plan)).first;
  }
  const Plan& plan = *it->second;

  size_t bytes = AlignUp(size_t(plan.workspace));
  for (const ScratchSpec& s : g.scratch) bytes += AlignUp(s.bytes);
  auto& [ws, ws_bytes] = state.workspaces[stream];
  if (ws_bytes < bytes) {
    // Work queued on this stream may still use the old buffer: free it in stream order.
    if (ws != nullptr) {
      cudaStreamSynchronize(stream);
      cudaFree(ws);
    }
    ws = nullptr;
    ws_bytes = 0;
    if (const cudaError_t err = cudaMalloc(&ws, bytes); err != cudaSuccess) {
      ws = nullptr;
      return absl::ResourceExhaustedError(
          absl::StrCat("cuDNN attention: cudaMalloc of ", bytes,
                       " bytes of workspace failed: ", cudaGetErrorName(err)));
    }
    ws_bytes = bytes;
  }

  std::vector<int64_t> uids;
  std::vector<void*> ptrs;
  // By-value scalars: host copies in the tensor's type, alive until the call returns.
  std::vector<float> f32_values;
  std::vector<int32_t> i32_values;
  f32_values.reserve(g.tensors.size());
  i32_values.reserve(g.tensors.size());
  char* cursor = static_cast<char*>(ws) + AlignUp(size_t(plan.workspace));
  ScratchMap scratch;
  for (const ScratchSpec& s : g.scratch) {
    uids.push_back(s.uid);
    ptrs.push_back(cursor);
    scratch[s.uid] = cursor;
    cursor += AlignUp(s.bytes);
  }
  for (const TensorSpec& t : g.tensors) {
    if (scratch.contains(t.uid)) continue;
    if (t.is_virtual || pointers.contains(t.uid) == false) {
      if (!t.by_value) continue;
      uids.push_back(t.uid);
      if (t.dtype == DataType::kInt32) {
        i32_values.push_back(int32_t(t.value));
        ptrs.push_back(&i32_values.back());
      } else {
        f32_values.push_back(float(t.value));
        ptrs.push_back(&f32_values.back());
      }
      continue;
    }
    uids.push_back(t.uid);
    ptrs.push_back(pointers.at(t.uid));
  }

  cudnnBackendDescriptor_t pack = nullptr;
  LOOM_CUDNN_RETURN_IF_ERROR(
      cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack));
  const Desc owned(pack);
  void* workspace = ws;
  LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS,
                                                      CUDNN_TYPE_INT64, int64_t(uids.size()),
                                                      uids.data()));
  LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                                      CUDNN_TYPE_VOID_PTR, int64_t(ptrs.size()),
                                                      ptrs.data()));
  LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE,
                                                      CUDNN_TYPE_VOID_PTR, 1, &workspace));
  LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(pack));
  LOOM_CUDNN_RETURN_IF_ERROR(cudnnSetStream(state.handle, stream));
  if (before) LOOM_RETURN_IF_ERROR(before(scratch));
  LOOM_CUDNN_RETURN_IF_ERROR(cudnnBackendExecute(state.handle, plan.plan, pack));
  if (after) LOOM_RETURN_IF_ERROR(after(scratch));
  return absl::OkStatus();
}

bool Varlen(const AttentionProblem& p) { return p.cu_seqlens_q != nullptr; }

// Lengths and ragged offsets of the sequences, from cu_seqlens, into scratch.
absl::Status PrepareRagged(const AttentionProblem& p, const ScratchMap& s, cudaStream_t stream) {
  auto i32 = [&](int64_t uid) { return static_cast<int32_t*>(s.at(uid)); };
  return LaunchCudnnRaggedPrepare(p.cu_seqlens_q, p.cu_seqlens_k, p.num_seqs,
                                  {.q = p.q_strides.token,
                                   .k = p.k_strides.token,
                                   .v = p.v_strides.token,
                                   .out = p.out_strides.token},
                                  {.seq_q = i32(kSeqQ),
                                   .seq_k = i32(kSeqK),
                                   .offset_q = i32(kRaggedQ),
                                   .offset_k = i32(kRaggedK),
                                   .offset_v = i32(kRaggedV),
                                   .offset_out = i32(kRaggedO)},
                                  stream);
}

// Between our lse [H, total] and the graph's padded [num_seqs, H, max_seqlen_q] stats.
absl::Status RepackStats(const AttentionProblem& p, const ScratchMap& s, bool to_packed,
                         cudaStream_t stream) {
  return LaunchCudnnStatsRepack(p.cu_seqlens_q, p.num_seqs, p.heads, p.max_seqlen_q, p.seqlen_q,
                                static_cast<float*>(s.at(kStats)), static_cast<float*>(p.lse),
                                to_packed, stream);
}

absl::Status CheckPointers(const char* op,
                           std::initializer_list<std::pair<const char*, const void*>> ptrs) {
  for (const auto& [name, p] : ptrs) {
    if (p == nullptr)
      return absl::InvalidArgumentError(absl::StrCat(op, " (cuDNN): ", name, " is null"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LaunchAttentionForwardCudnn(const AttentionProblem& p, cudaStream_t stream) {
  LOOM_ASSIGN_OR_RETURN(const GraphSpec g, BuildSdpaForwardGraph(p));
  if (p.seqlen_q == 0) return absl::OkStatus();
  LOOM_RETURN_IF_ERROR(CheckPointers(
      "AttentionForward", {{"q", p.q}, {"k", p.k}, {"v", p.v}, {"out", p.out}, {"lse", p.lse}}));
  const absl::flat_hash_map<int64_t, void*> pointers = {{kQ, const_cast<void*>(p.q)},
                                                        {kK, const_cast<void*>(p.k)},
                                                        {kV, const_cast<void*>(p.v)},
                                                        {kO, p.out},
                                                        {kStats, p.lse}};
  if (!Varlen(p)) return Execute(g, pointers, stream);
  return Execute(
      g, pointers, stream, [&](const ScratchMap& s) { return PrepareRagged(p, s, stream); },
      [&](const ScratchMap& s) { return RepackStats(p, s, /*to_packed=*/true, stream); });
}

absl::Status LaunchAttentionBackwardCudnn(const AttentionBackwardProblem& bp, cudaStream_t stream) {
  LOOM_ASSIGN_OR_RETURN(const GraphSpec g, BuildSdpaBackwardGraph(bp));
  const AttentionProblem& p = bp.fwd;
  if (p.seqlen_q == 0) return absl::OkStatus();
  LOOM_RETURN_IF_ERROR(CheckPointers("AttentionBackward", {{"q", p.q},
                                                           {"k", p.k},
                                                           {"v", p.v},
                                                           {"out", p.out},
                                                           {"lse", p.lse},
                                                           {"gout", bp.gout},
                                                           {"gq", bp.gq},
                                                           {"gk", bp.gk},
                                                           {"gv", bp.gv}}));
  const absl::flat_hash_map<int64_t, void*> pointers = {{kQ, const_cast<void*>(p.q)},
                                                        {kK, const_cast<void*>(p.k)},
                                                        {kV, const_cast<void*>(p.v)},
                                                        {kO, p.out},
                                                        {kStats, p.lse},
                                                        {kDO, const_cast<void*>(bp.gout)},
                                                        {kDQ, bp.gq},
                                                        {kDK, bp.gk},
                                                        {kDV, bp.gv}};
  if (!Varlen(p)) return Execute(g, pointers, stream);
  return Execute(g, pointers, stream, [&](const ScratchMap& s) {
    LOOM_RETURN_IF_ERROR(PrepareRagged(p, s, stream));
    return RepackStats(p, s, /*to_packed=*/false, stream);
  });
}

}  // namespace loom::cuda
