// Reductions (see reduce.h for the strategies and the determinism argument).
//
// Every strategy writes f64 partials, one per (output, chunk), into the
// workspace; FinalizeKernel combines the chunks of each output in chunk order,
// divides for the mean and converts to the output dtype. The shape alone
// decides the strategy, the chunk size and so every combine order.
#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/cuda/block_reduce.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_types.h"
#include "kernels/cuda/reduce.h"
#include "kernels/cuda/strided_index.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
// Rows of at most this many elements get a warp each; longer rows a block per chunk.
constexpr int64_t kWarpRowMax = 2048;
// Reduced elements per block of the block-rows strategy (at least; see MakePlan).
constexpr int64_t kBlockRowChunk = 16384;
// The columns strategy splits rows so that about this many threads run.
constexpr int64_t kColumnTargetThreads = 65536;
constexpr int64_t kColumnMinChunk = 16;
constexpr int64_t kMaxGridY = 65535;

enum class Strategy { kWarpRows, kBlockRows, kColumns };

// The element op of each ReduceOp, in f64.
struct Accumulator {
  ReduceOp op;

  __device__ __forceinline__ double Identity() const {
    if (op == ReduceOp::kMax) return -Infinity<double>();
    if (op == ReduceOp::kMin) return Infinity<double>();
    return 0.0;
  }
  __device__ __forceinline__ double Add(double acc, double v) const {
    return Combine(acc, op == ReduceOp::kSumSquares ? v * v : v);
  }
  // Commutative (for non-zero, non-NaN operands bit for bit), as WarpReduce needs.
  __device__ __forceinline__ double Combine(double a, double b) const {
    switch (op) {
      case ReduceOp::kMax:
        return (b > a || IsNan(b)) ? b : a;
      case ReduceOp::kMin:
        return (b < a || IsNan(b)) ? b : a;
      default:
        return a + b;
    }
  }
  __device__ __forceinline__ double operator()(double a, double b) const { return Combine(a, b); }
};

struct Plan {
  Strategy strategy = Strategy::kWarpRows;
  int64_t n_out = 0, n_in = 0;
  int64_t chunk = 0, chunks = 0;  // per output: reduced elements per chunk, and their count
  StridedIndex<1> kept, reduced;  // x offsets of an output and of a reduced element
  bool wide = false;              // 64-bit index math
};

// Reduced elements [begin, end) of chunk `c` of the plan.
__device__ __forceinline__ void ChunkRange(int64_t chunk, int64_t n_in, int64_t c, int64_t* begin,
                                           int64_t* end) {
  *begin = c * chunk;
  *end = min(n_in, *begin + chunk);
}

template <typename IndexT, typename T>
__device__ __forceinline__ double ElementAt(const T* x, const StridedIndex<1>& reduced,
                                            int64_t base, int64_t i) {
  int64_t off[1];
  reduced.Offsets<IndexT>(IndexT(i), off);
  return ToDoubleOnDevice(x[base + off[0]]);
}

// A warp per output; a block holds kWarpsPerBlock outputs. One chunk per output.
template <typename IndexT, typename T>
__global__ void WarpRowsKernel(Accumulator acc, StridedIndex<1> kept, StridedIndex<1> reduced,
                               int64_t n_out, int64_t n_in, const T* x, double* partials) {
  const int64_t o = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (o >= n_out) return;  // the whole warp: o is uniform across it
  int64_t base[1];
  kept.Offsets<IndexT>(IndexT(o), base);
  double a = acc.Identity();
  for (int64_t i = threadIdx.x % 32; i < n_in; i += 32) {
    a = acc.Add(a, ElementAt<IndexT>(x, reduced, base[0], i));
  }
  a = WarpReduce(a, acc);
  if (threadIdx.x % 32 == 0) partials[o] = a;
}

// Block (blockIdx.x, blockIdx.y) reduces chunk blockIdx.y of output blockIdx.x.
template <typename IndexT, typename T>
__global__ void BlockRowsKernel(Accumulator acc, StridedIndex<1> kept, StridedIndex<1> reduced,
                                int64_t n_in, int64_t chunk, const T* x, double* partials) {
  const int64_t o = blockIdx.x, c = blockIdx.y;
  int64_t base[1];
  kept.Offsets<IndexT>(IndexT(o), base);
  int64_t begin, end;
  ChunkRange(chunk, n_in, c, &begin, &end);
  double a = acc.Identity();
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    a = acc.Add(a, ElementAt<IndexT>(x, reduced, base[0], i));
  }
  a = BlockReduce(a, acc);
  if (threadIdx.x == 0) partials[o * gridDim.y + c] = a;
}

// Thread (blockIdx.x * blockDim.x + threadIdx.x) reduces chunk blockIdx.y of that output.
template <typename IndexT, typename T>
__global__ void ColumnsKernel(Accumulator acc, StridedIndex<1> kept, StridedIndex<1> reduced,
                              int64_t n_out, int64_t n_in, int64_t chunk, const T* x,
                              double* partials) {
  const int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (o >= n_out) return;
  int64_t base[1];
  kept.Offsets<IndexT>(IndexT(o), base);
  int64_t begin, end;
  ChunkRange(chunk, n_in, blockIdx.y, &begin, &end);
  double a = acc.Identity();
  for (int64_t i = begin; i < end; ++i) a = acc.Add(a, ElementAt<IndexT>(x, reduced, base[0], i));
  partials[o * gridDim.y + blockIdx.y] = a;
}

// out[o] = the chunks of output o combined in order (and divided by n_in for the mean).
template <typename O>
__global__ void FinalizeKernel(Accumulator acc, int64_t n_out, int64_t n_in, int64_t chunks,
                               const double* partials, O* out) {
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < n_out;
       o += int64_t(gridDim.x) * blockDim.x) {
    double a = chunks == 0 ? acc.Identity() : partials[o * chunks];
    for (int64_t c = 1; c < chunks; ++c) a = acc.Combine(a, partials[o * chunks + c]);
    if (acc.op == ReduceOp::kMean) a /= double(n_in);
    out[o] = FromDoubleOnDevice<O>(a);
  }
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

absl::StatusOr<Plan> MakePlan(const ReduceProblem& p) {
  const size_t nd = p.sizes.size();
  if (p.reduce_dim.size() != nd || p.x_strides.size() != nd) {
    return absl::InvalidArgumentError(
        absl::StrCat("Reduce: x has ", nd, " sizes, ", p.x_strides.size(), " strides and ",
                     p.reduce_dim.size(), " reduce_dim flags; expected one of each per dim"));
  }
  if (p.x_dtype == DType::kBool || p.out_dtype == DType::kBool) {
    return absl::InvalidArgumentError("Reduce: bool tensors have no arithmetic");
  }
  std::vector<int64_t> kept_sizes, kept_strides, red_sizes, red_strides;
  for (size_t d = 0; d < nd; ++d) {
    if (p.sizes[d] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("Reduce: negative size in [", absl::StrJoin(p.sizes, ", "), "]"));
    }
    (p.reduce_dim[d] ? red_sizes : kept_sizes).push_back(p.sizes[d]);
    (p.reduce_dim[d] ? red_strides : kept_strides).push_back(p.x_strides[d]);
  }
  Plan plan;
  LOOM_ASSIGN_OR_RETURN(
      plan.kept, MakeStridedIndex<1>("Reduce", kept_sizes, {kept_strides}, {"x (kept dims)"}));
  LOOM_ASSIGN_OR_RETURN(
      plan.reduced, MakeStridedIndex<1>("Reduce", red_sizes, {red_strides}, {"x (reduced dims)"}));
  plan.n_out = plan.n_in = 1;
  for (int64_t s : kept_sizes) plan.n_out *= s;
  for (int64_t s : red_sizes) plan.n_in *= s;
  if (plan.n_in == 0 && p.op != ReduceOp::kSum && p.op != ReduceOp::kSumSquares) {
    return absl::InvalidArgumentError(absl::StrCat("Reduce: max/min/mean over an empty dim of [",
                                                   absl::StrJoin(p.sizes, ", "), "]"));
  }
  if (plan.n_out > 0 && p.out == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("Reduce: out is null for ", plan.n_out, " outputs"));
  }
  if (plan.n_out > 0 && plan.n_in > 0 && p.x == nullptr) {
    return absl::InvalidArgumentError("Reduce: x is null");
  }
  plan.wide = std::max(plan.n_out, plan.n_in) > int64_t(UINT32_MAX);
  if (plan.n_out == 0 || plan.n_in == 0) return plan;  // nothing to read

  const int64_t kept_inner = plan.kept.strides[0][plan.kept.ndim - 1];
  const int64_t red_inner = plan.reduced.strides[0][plan.reduced.ndim - 1];
  if (plan.n_out > 1 && kept_inner == 1 && red_inner != 1 && plan.n_in > 1) {
    plan.strategy = Strategy::kColumns;
    const int64_t want_chunks = std::max<int64_t>(1, kColumnTargetThreads / plan.n_out);
    plan.chunk = std::max(kColumnMinChunk, CeilDiv(plan.n_in, want_chunks));
  } else if (plan.n_in <= kWarpRowMax) {
    plan.strategy = Strategy::kWarpRows;
    plan.chunk = plan.n_in;
  } else {
    plan.strategy = Strategy::kBlockRows;
    plan.chunk = std::max(kBlockRowChunk, CeilDiv(plan.n_in, kMaxGridY));
  }
  plan.chunk = std::max(plan.chunk, CeilDiv(plan.n_in, kMaxGridY));
  plan.chunks = CeilDiv(plan.n_in, plan.chunk);
  if (plan.strategy == Strategy::kBlockRows && plan.n_out > int64_t(INT32_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Reduce: ", plan.n_out, " outputs of long rows exceed the grid"));
  }
  return plan;
}

template <typename IndexT, typename T>
absl::Status LaunchPartials(const Plan& plan, Accumulator acc, const T* x, double* partials,
                            cudaStream_t stream) {
  const dim3 block(kThreads);
  switch (plan.strategy) {
    case Strategy::kWarpRows:
      return Launch<&WarpRowsKernel<IndexT, T>>(
          {.grid = dim3(unsigned(CeilDiv(plan.n_out, kWarpsPerBlock))),
           .block = block,
           .stream = stream},
          acc, plan.kept, plan.reduced, plan.n_out, plan.n_in, x, partials);
    case Strategy::kBlockRows:
      return Launch<&BlockRowsKernel<IndexT, T>>(
          {.grid = dim3(unsigned(plan.n_out), unsigned(plan.chunks)),
           .block = block,
           .stream = stream},
          acc, plan.kept, plan.reduced, plan.n_in, plan.chunk, x, partials);
    case Strategy::kColumns:
      return Launch<&ColumnsKernel<IndexT, T>>(
          {.grid = dim3(unsigned(CeilDiv(plan.n_out, kThreads)), unsigned(plan.chunks)),
           .block = block,
           .stream = stream},
          acc, plan.kept, plan.reduced, plan.n_out, plan.n_in, plan.chunk, x, partials);
  }
  return absl::InternalError("Reduce: unknown strategy");
}

}  // namespace

absl::StatusOr<size_t> ReduceWorkspaceBytes(const ReduceProblem& p) {
  LOOM_ASSIGN_OR_RETURN(const Plan plan, MakePlan(p));
  return size_t(plan.n_out) * size_t(plan.chunks) * sizeof(double);
}

absl::Status LaunchReduce(const ReduceProblem& p, void* workspace, cudaStream_t stream) {
  LOOM_ASSIGN_OR_RETURN(const Plan plan, MakePlan(p));
  if (plan.n_out == 0) return absl::OkStatus();
  if (plan.chunks > 0 && workspace == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("Reduce: workspace is null; it needs ",
                                                   plan.n_out * plan.chunks * 8, " bytes"));
  }
  const Accumulator acc{p.op};
  double* partials = static_cast<double*>(workspace);
  if (plan.chunks > 0) {
    LOOM_RETURN_IF_ERROR(DispatchDeviceType(p.x_dtype, [&](auto tag) -> absl::Status {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, bool>) {
        return absl::InternalError("unreachable: bool checked by MakePlan");
      } else {
        const T* x = static_cast<const T*>(p.x);
        return plan.wide ? LaunchPartials<uint64_t>(plan, acc, x, partials, stream)
                         : LaunchPartials<uint32_t>(plan, acc, x, partials, stream);
      }
    }));
  }
  return DispatchDeviceType(p.out_dtype, [&](auto tag) -> absl::Status {
    using O = decltype(tag);
    if constexpr (std::is_same_v<O, bool>) {
      return absl::InternalError("unreachable: bool checked by MakePlan");
    } else {
      const int64_t blocks = std::clamp<int64_t>(CeilDiv(plan.n_out, kThreads), 1, 4096);
      return Launch<&FinalizeKernel<O>>(
          {.grid = dim3(unsigned(blocks)), .block = dim3(kThreads), .stream = stream}, acc,
          plan.n_out, plan.n_in, plan.chunks, partials, static_cast<O*>(p.out));
    }
  });
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
