// cuBLASLt GEMM (see gemm_cublaslt.h). The call sequence follows NVIDIA's
// cuBLASLt documentation: a matmul descriptor (compute and scale type,
// transposes), one layout per matrix (type, rows, cols, ld, batch count and
// stride), a preference (workspace limit, pointer alignments), the
// heuristic's best algorithm, then cublasLtMatmul with C = D.
#include "kernels/cuda/gemm_cublaslt.h"

#include <cuda_runtime_api.h>

#include <climits>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "runtime/status.h"

namespace loom::cuda {
namespace {

constexpr size_t kWorkspaceBytes = 32 << 20;

absl::Status Invalid(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("LaunchGemmCublasLt: ", what));
}

absl::Status CheckOperand(const char* name, const void* ptr, int64_t rows, int64_t cols, int64_t ld,
                          int64_t batch_stride) {
  if (rows == 0 || cols == 0) return absl::OkStatus();
  if (ptr == nullptr) return Invalid(absl::StrCat(name, " is null"));
  if (ld < cols) {
    return Invalid(absl::StrCat("ld", name, " = ", ld, " is less than the ", cols,
                                " columns of the stored ", rows, " x ", cols, " matrix"));
  }
  if (batch_stride < 0) return Invalid(absl::StrCat("batch_stride_", name, " < 0"));
  return absl::OkStatus();
}

cudaDataType_t CudaType(DType d) {
  switch (d) {
    case DType::kBF16:
      return CUDA_R_16BF;
    case DType::kF16:
      return CUDA_R_16F;
    case DType::kF64:
      return CUDA_R_64F;
    default:
      return CUDA_R_32F;
  }
}

absl::Status CublasStatus(cublasStatus_t s, const char* call) {
  if (s == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  const std::string msg = absl::StrCat(call, " failed: ", CublasStatusName(s));
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED:
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return absl::FailedPreconditionError(msg);
    case CUBLAS_STATUS_INVALID_VALUE:
      return absl::InvalidArgumentError(msg);
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return absl::UnimplementedError(msg);
    case CUBLAS_STATUS_ALLOC_FAILED:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

#define LOOM_CUBLAS_RETURN_IF_ERROR(call) LOOM_RETURN_IF_ERROR(CublasStatus((call), #call))

// The largest power of two <= 256 that divides every address of a batched operand.
uint32_t Alignment(const CublasLtMatrix& m, int32_t batch, size_t elem) {
  uint64_t bits = reinterpret_cast<uintptr_t>(m.data);
  if (batch > 1) bits |= uint64_t(m.batch_stride) * elem;
  uint32_t a = 256;
  while (a > 1 && bits % a != 0) a /= 2;
  return a;
}

size_t ElemSize(cudaDataType_t t) {
  switch (t) {
    case CUDA_R_16BF:
    case CUDA_R_16F:
      return 2;
    case CUDA_R_64F:
      return 8;
    default:
      return 4;
  }
}

// RAII owners of cuBLASLt descriptors.
struct LayoutDeleter {
  void operator()(cublasLtMatrixLayout_t l) const { cublasLtMatrixLayoutDestroy(l); }
};
struct DescDeleter {
  void operator()(cublasLtMatmulDesc_t d) const { cublasLtMatmulDescDestroy(d); }
};
struct PrefDeleter {
  void operator()(cublasLtMatmulPreference_t p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using Layout = std::unique_ptr<std::remove_pointer_t<cublasLtMatrixLayout_t>, LayoutDeleter>;
using Desc = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulDesc_t>, DescDeleter>;
using Pref = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>, PrefDeleter>;

absl::StatusOr<Layout> MakeLayout(const CublasLtMatrix& m, int32_t batch) {
  cublasLtMatrixLayout_t l = nullptr;
  LOOM_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&l, m.type, m.rows, m.cols, m.ld));
  Layout owned(l);
  if (batch > 1) {
    LOOM_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutSetAttribute(
        l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof(batch)));
    LOOM_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutSetAttribute(
        l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &m.batch_stride, sizeof(m.batch_stride)));
  }
  return owned;
}

// Per device: one handle; per stream: one workspace; per problem signature: the algorithm.
struct Algo {
  cublasLtMatmulAlgo_t algo;
  size_t workspace;
};
struct DeviceState {
  cublasLtHandle_t handle = nullptr;
  absl::flat_hash_map<cudaStream_t, void*> workspaces;
  absl::flat_hash_map<std::string, Algo> algos;
};

absl::Mutex g_mu;
// Never destroyed: the handles and workspaces live until the process exits.
absl::flat_hash_map<int, DeviceState>& States() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  static auto* states = new absl::flat_hash_map<int, DeviceState>();
  return *states;
}

std::string Signature(const CublasLtPlan& p, const uint32_t (&align)[3]) {
  auto mat = [](const CublasLtMatrix& m) {
    return absl::StrCat(int(m.type), ":", m.rows, "x", m.cols, "/", m.ld, "/", m.batch_stride);
  };
  return absl::StrCat(int(p.compute), ",", int(p.trans_a), int(p.trans_b), ",", p.m, ",", p.n, ",",
                      p.k, ",", p.batch, ",", mat(p.a), ",", mat(p.b), ",", mat(p.d), ",", align[0],
                      ",", align[1], ",", align[2], ",", p.beta != 0);
}

}  // namespace

const char* CublasStatusName(cublasStatus_t s) { return cublasLtGetStatusName(s); }

absl::StatusOr<CublasLtPlan> PlanCublasLtGemm(const GemmProblem& p) {
  const bool half = p.input == DType::kBF16 || p.input == DType::kF16;
  if (!half && p.input != DType::kF32 && p.input != DType::kF64) {
    return Invalid(
        absl::StrCat("input dtype ", DTypeName(p.input), " is not one of bf16, f16, f32, f64"));
  }
  if (p.output != p.input && !(half && p.output == DType::kF32)) {
    return Invalid(absl::StrCat("output dtype ", DTypeName(p.output), " for ", DTypeName(p.input),
                                " inputs (expected ", DTypeName(p.input), half ? " or f32" : "",
                                ")"));
  }
  if (p.batch < 1 || p.m < 0 || p.n < 0 || p.k < 0) {
    return Invalid(absl::StrCat("batch ", p.batch, ", m ", p.m, ", n ", p.n, ", k ", p.k,
                                " (need batch >= 1 and m, n, k >= 0)"));
  }
  CublasLtPlan plan;
  if (p.m == 0 || p.n == 0) {
    plan.empty = true;
    return plan;
  }
  LOOM_RETURN_IF_ERROR(CheckOperand("a", p.a, p.trans_a ? p.k : p.m, p.trans_a ? p.m : p.k, p.lda,
                                    p.batch_stride_a));
  LOOM_RETURN_IF_ERROR(CheckOperand("b", p.b, p.trans_b ? p.n : p.k, p.trans_b ? p.k : p.n, p.ldb,
                                    p.batch_stride_b));
  LOOM_RETURN_IF_ERROR(CheckOperand("o", p.out, p.m, p.n, p.ldo, p.batch_stride_out));
  if (p.batch > 1 && p.batch_stride_out < (p.m - 1) * p.ldo + p.n) {
    return Invalid(
        absl::StrCat("batch_stride_o = ", p.batch_stride_out,
                     " makes the output batches overlap (need >= ", (p.m - 1) * p.ldo + p.n, ")"));
  }
  for (const int64_t v : {p.m, p.n, p.k, p.lda, p.ldb, p.ldo, p.batch}) {
    if (v > INT_MAX) {
      return Invalid(absl::StrCat("dimension or leading dimension ", v,
                                  " exceeds 2^31 - 1 (cuBLASLt's int32 limit)"));
    }
  }

  const bool f64 = p.input == DType::kF64;
  plan.compute = f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F;
  plan.scale = f64 ? CUDA_R_64F : CUDA_R_32F;
  plan.alpha = p.alpha;
  plan.beta = p.beta;
  plan.m = p.n;
  plan.n = p.m;
  plan.k = p.k;
  plan.batch = int32_t(p.batch);
  // cuBLASLt's A is our B: row-major [K, N] is column-major [N, K] (op N);
  // row-major [N, K] (trans_b) is column-major [K, N], transposed (op T).
  plan.trans_a = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  plan.a = {.type = CudaType(p.input),
            .rows = uint64_t(p.trans_b ? p.k : p.n),
            .cols = uint64_t(p.trans_b ? p.n : p.k),
            .ld = p.ldb,
            .batch_stride = p.batch_stride_b,
            .data = p.b};
  // cuBLASLt's B is our A: row-major [M, K] is column-major [K, M] (op N).
  plan.trans_b = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  plan.b = {.type = CudaType(p.input),
            .rows = uint64_t(p.trans_a ? p.m : p.k),
            .cols = uint64_t(p.trans_a ? p.k : p.m),
            .ld = p.lda,
            .batch_stride = p.batch_stride_a,
            .data = p.a};
  plan.d = {.type = CudaType(p.output),
            .rows = uint64_t(p.n),
            .cols = uint64_t(p.m),
            .ld = p.ldo,
            .batch_stride = p.batch_stride_out,
            .data = p.out};
  // A weight shared by the batch against contiguous activations: one product
  // of batch * M rows (the columns of cuBLASLt's B and D).
  if (plan.batch > 1 && p.batch_stride_b == 0 && !p.trans_a && p.batch_stride_a == p.m * p.lda &&
      p.batch_stride_out == p.m * p.ldo && p.m * p.batch <= INT_MAX) {
    plan.n = p.m * p.batch;
    plan.b.cols = plan.d.cols = uint64_t(plan.n);
    plan.batch = 1;
    plan.a.batch_stride = plan.b.batch_stride = plan.d.batch_stride = 0;
  }
  return plan;
}

absl::Status LaunchGemmCublasLt(const GemmProblem& p, cudaStream_t stream) {
  LOOM_ASSIGN_OR_RETURN(const CublasLtPlan plan, PlanCublasLtGemm(p));
  if (plan.empty) return absl::OkStatus();
  int device = -1, count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaSuccess && count == 0) err = cudaErrorNoDevice;
  if (err == cudaSuccess) err = cudaGetDevice(&device);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return absl::FailedPreconditionError(absl::StrCat("LaunchGemmCublasLt: no usable CUDA device (",
                                                      cudaGetErrorName(err), ": ",
                                                      cudaGetErrorString(err), ")"));
  }

  const uint32_t align[3] = {Alignment(plan.a, plan.batch, ElemSize(plan.a.type)),
                             Alignment(plan.b, plan.batch, ElemSize(plan.b.type)),
                             Alignment(plan.d, plan.batch, ElemSize(plan.d.type))};
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  std::optional<Algo> cached;  // copied: the map may rehash once the lock is released
  const std::string signature = Signature(plan, align);
  {
    absl::MutexLock lock(&g_mu);
    DeviceState& state = States()[device];
    if (state.handle == nullptr) LOOM_CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&state.handle));
    handle = state.handle;
    void*& ws = state.workspaces[stream];
    if (ws == nullptr) {
      if (const cudaError_t err = cudaMalloc(&ws, kWorkspaceBytes); err != cudaSuccess) {
        ws = nullptr;
        return absl::ResourceExhaustedError(
            absl::StrCat("LaunchGemmCublasLt: cudaMalloc of the ", kWorkspaceBytes >> 20,
                         " MiB workspace failed: ", cudaGetErrorName(err)));
      }
    }
    workspace = ws;
    if (auto it = state.algos.find(signature); it != state.algos.end()) cached = it->second;
  }

  cublasLtMatmulDesc_t raw_desc = nullptr;
  LOOM_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&raw_desc, plan.compute, plan.scale));
  const Desc desc(raw_desc);
  LOOM_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(raw_desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                                             &plan.trans_a, sizeof(plan.trans_a)));
  LOOM_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(raw_desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                                             &plan.trans_b, sizeof(plan.trans_b)));
  LOOM_ASSIGN_OR_RETURN(const Layout a, MakeLayout(plan.a, plan.batch));
  LOOM_ASSIGN_OR_RETURN(const Layout b, MakeLayout(plan.b, plan.batch));
  LOOM_ASSIGN_OR_RETURN(const Layout d, MakeLayout(plan.d, plan.batch));

  Algo algo;
  if (cached.has_value()) {
    algo = *cached;
  } else {
    cublasLtMatmulPreference_t raw_pref = nullptr;
    LOOM_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&raw_pref));
    const Pref pref(raw_pref);
    const uint64_t ws_bytes = kWorkspaceBytes;
    LOOM_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
        raw_pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof(ws_bytes)));
    const cublasLtMatmulPreferenceAttributes_t align_attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    const uint32_t align_val[4] = {align[0], align[1], align[2], align[2]};
    for (int i = 0; i < 4; ++i) {
      LOOM_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(
          raw_pref, align_attr[i], &align_val[i], sizeof(align_val[i])));
    }
    cublasLtMatmulHeuristicResult_t result;
    std::memset(&result, 0, sizeof(result));
    int found = 0;
    LOOM_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulAlgoGetHeuristic(
        handle, raw_desc, a.get(), b.get(), d.get(), d.get(), raw_pref, 1, &result, &found));
    if (found == 0 || result.state != CUBLAS_STATUS_SUCCESS) {
      return absl::UnimplementedError(absl::StrCat(
          "LaunchGemmCublasLt: cuBLASLt has no algorithm for ", DTypeName(p.input), " -> ",
          DTypeName(p.output), " m ", p.m, " n ", p.n, " k ", p.k, " batch ", p.batch));
    }
    algo = {result.algo, result.workspaceSize};
    absl::MutexLock lock(&g_mu);
    States()[device].algos.emplace(signature, algo);
  }

  const float alpha32 = float(plan.alpha), beta32 = float(plan.beta);
  const void* alpha = plan.scale == CUDA_R_64F ? static_cast<const void*>(&plan.alpha) : &alpha32;
  const void* beta = plan.scale == CUDA_R_64F ? static_cast<const void*>(&plan.beta) : &beta32;
  return CublasStatus(
      cublasLtMatmul(handle, raw_desc, alpha, plan.a.data, a.get(), plan.b.data, b.get(), beta,
                     plan.d.data, d.get(), const_cast<void*>(plan.d.data), d.get(), &algo.algo,
                     workspace, algo.workspace, stream),
      "cublasLtMatmul");
}

}  // namespace loom::cuda
