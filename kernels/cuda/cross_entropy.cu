// Fused cross-entropy (see cross_entropy.h). S is the stat type: f32, or f64
// for f64 logits.
//
// Forward, vocab <= kWarpRowMax: a warp per row computes the row's online
// (max, sum) and writes lse and loss. Larger vocabularies: block (row, c)
// reduces chunk c of the row; with one chunk it writes the results itself,
// else it stores its pair in the workspace and MergeChunksKernel combines a
// row's pairs in chunk order. Backward: the same row split, each thread
// writing its share of g * (exp(x - lse) - onehot).
#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/block_reduce.h"
#include "kernels/cuda/cross_entropy.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_types.h"
#include "kernels/cuda/row_loops.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

constexpr int64_t kMaxGridY = 65535;

__device__ __forceinline__ bool ValidLabel(int64_t label, int64_t vocab) {
  return label >= 0 && label < vocab;
}

// lse and loss of `row` from its merged statistics; flags a bad label.
template <typename T, typename S>
__device__ __forceinline__ void WriteRowResults(const T* row_logits, int64_t row, int64_t label,
                                                int64_t ignore_index, int64_t vocab, MaxSum<S> ms,
                                                int32_t* first_bad_row, S* losses, S* lse) {
  const S row_lse = LogSumExp(ms);
  lse[row] = row_lse;
  if (label == ignore_index) {
    losses[row] = S(0);
  } else if (ValidLabel(label, vocab)) {
    losses[row] = row_lse - S(Load(row_logits[label]));
  } else {
    losses[row] = std::numeric_limits<S>::quiet_NaN();
    if (first_bad_row != nullptr) atomicMin(first_bad_row, int(row));
  }
}

// Rows of at most kWarpRowMax logits, or chunk blockIdx.y of row blockIdx.x.
// `partials` is null when the row is one chunk (results written directly).
template <int kThreadsPerRow, int V, typename T>
__global__ void ForwardKernel(int64_t rows, int64_t vocab, int64_t chunk, const T* logits,
                              const int64_t* labels, int64_t ignore_index, int32_t* first_bad_row,
                              stat_t<T>* losses, stat_t<T>* lse, MaxSum<stat_t<T>>* partials) {
  using S = stat_t<T>;
  int64_t row;
  int lane;
  if (!RowOfThread<kThreadsPerRow>(rows, &row, &lane)) return;
  const T* row_logits = logits + row * vocab;
  const int64_t begin = int64_t(blockIdx.y) * chunk;
  const int64_t len = min(chunk, vocab - begin);
  MaxSum<S> ms = EmptyMaxSum<S>();
  ForEachInRow<V>(row_logits + begin, len, lane, kThreadsPerRow,
                  [&](int64_t, T v) { Accumulate(ms, S(Load(v))); });
  ms = RowReduce<kThreadsPerRow>(ms, MaxSumOp{});
  if (lane != 0) return;
  if (partials != nullptr) {
    partials[row * gridDim.y + blockIdx.y] = ms;
  } else {
    WriteRowResults(row_logits, row, labels[row], ignore_index, vocab, ms, first_bad_row, losses,
                    lse);
  }
}

// A thread per row merges the row's chunk statistics in chunk order.
template <typename T>
__global__ void MergeChunksKernel(int64_t rows, int64_t vocab, int64_t chunks, const T* logits,
                                  const int64_t* labels, int64_t ignore_index,
                                  int32_t* first_bad_row, const MaxSum<stat_t<T>>* partials,
                                  stat_t<T>* losses, stat_t<T>* lse) {
  using S = stat_t<T>;
  for (int64_t row = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; row < rows;
       row += int64_t(gridDim.x) * blockDim.x) {
    MaxSum<S> ms = partials[row * chunks];
    for (int64_t c = 1; c < chunks; ++c) ms = MaxSumOp{}(ms, partials[row * chunks + c]);
    WriteRowResults(logits + row * vocab, row, labels[row], ignore_index, vocab, ms, first_bad_row,
                    losses, lse);
  }
}

// Chunk blockIdx.y of row blockIdx.x (or a warp's row) of the gradient.
template <int kThreadsPerRow, int V, typename T>
__global__ void BackwardKernel(int64_t rows, int64_t vocab, int64_t chunk, const T* logits,
                               const int64_t* labels, int64_t ignore_index, int32_t* first_bad_row,
                               const stat_t<T>* lse, const stat_t<T>* grad_losses, T* glogits) {
  using S = stat_t<T>;
  int64_t row;
  int lane;
  if (!RowOfThread<kThreadsPerRow>(rows, &row, &lane)) return;
  const int64_t begin = int64_t(blockIdx.y) * chunk;
  const int64_t len = min(chunk, vocab - begin);
  const T* x = logits + row * vocab + begin;
  T* g = glogits + row * vocab + begin;
  const int64_t label = labels[row];
  if (label == ignore_index) {
    TransformRow<V>(x, g, len, lane, kThreadsPerRow, [](T) { return Store<T>(compute_t<T>(0)); });
    return;
  }
  const bool valid = ValidLabel(label, vocab);
  if (!valid && first_bad_row != nullptr && blockIdx.y == 0 && lane == 0) {
    atomicMin(first_bad_row, int(row));
  }
  const S row_lse = lse[row], scale = grad_losses[row];
  const int64_t label_in_chunk = valid ? label - begin : -1;
  // TransformRow hands out elements in order; count them to know each one's column.
  const Vec<T, V>* vx = reinterpret_cast<const Vec<T, V>*>(x);
  Vec<T, V>* vg = reinterpret_cast<Vec<T, V>*>(g);
  for (int64_t j = lane; j < len / V; j += kThreadsPerRow) {
    const Vec<T, V> in = vx[j];
    Vec<T, V> out;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const S p = Exp(S(Load(in.v[k])) - row_lse);
      const S onehot = j * V + k == label_in_chunk ? S(1) : S(0);
      out.v[k] = Store<T>(compute_t<T>(scale * (p - onehot)));
    }
    vg[j] = out;
  }
}

absl::Status Check(const CrossEntropyProblem& p,
                   std::initializer_list<std::pair<const char*, const void*>> arrays) {
  if (!IsFloating(p.dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CrossEntropy: logits must be floating (f32, f64, bf16, f16), got ", DTypeName(p.dtype)));
  }
  if (p.rows < 0 || p.vocab < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("CrossEntropy: negative shape [", p.rows, ", ", p.vocab, "]"));
  }
  if (p.rows > 0 && p.vocab == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("CrossEntropy: logits [", p.rows, ", 0] have no classes"));
  }
  if (p.rows > int64_t(INT32_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("CrossEntropy: ", p.rows, " rows exceed the grid"));
  }
  if (p.rows == 0) return absl::OkStatus();
  if (p.logits == nullptr) return absl::InvalidArgumentError("CrossEntropy: logits is null");
  if (p.labels == nullptr) return absl::InvalidArgumentError("CrossEntropy: labels is null");
  for (const auto& [name, ptr] : arrays) {
    if (ptr == nullptr)
      return absl::InvalidArgumentError(absl::StrCat("CrossEntropy: ", name, " is null"));
  }
  return absl::OkStatus();
}

int64_t Chunks(const CrossEntropyProblem& p) {
  if (p.vocab <= kWarpRowMax) return 1;
  return (p.vocab + kCrossEntropyChunk - 1) / kCrossEntropyChunk;
}

}  // namespace

size_t CrossEntropyWorkspaceBytes(const CrossEntropyProblem& p) {
  const int64_t chunks = Chunks(p);
  if (chunks <= 1 || p.rows <= 0) return 0;
  const size_t pair = IsFloating(p.dtype) && p.dtype == DType::kF64 ? 16 : 8;
  return size_t(p.rows) * size_t(chunks) * pair;
}

absl::Status LaunchCrossEntropyForward(const CrossEntropyProblem& p, void* losses, void* lse,
                                       void* workspace, cudaStream_t stream) {
  LOOM_RETURN_IF_ERROR(Check(p, {{"losses", losses}, {"lse", lse}}));
  if (p.rows == 0) return absl::OkStatus();
  const int64_t chunks = Chunks(p);
  if (chunks > kMaxGridY) {
    return absl::InvalidArgumentError(
        absl::StrCat("CrossEntropy: a vocabulary of ", p.vocab, " exceeds the grid"));
  }
  if (chunks > 1 && workspace == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("CrossEntropy: workspace is null; it needs ",
                                                   CrossEntropyWorkspaceBytes(p), " bytes"));
  }
  return DispatchDeviceFloat(p.dtype, [&](auto tag) -> absl::Status {
    using T = decltype(tag);
    using S = stat_t<T>;
    const T* logits = static_cast<const T*>(p.logits);
    S* lo = static_cast<S*>(losses);
    S* ls = static_cast<S*>(lse);
    MaxSum<S>* partials = chunks > 1 ? static_cast<MaxSum<S>*>(workspace) : nullptr;
    LOOM_RETURN_IF_ERROR(
        DispatchRowShape<T>(p.vocab, {p.logits}, [&](auto threads_per_row, auto v) {
          dim3 grid = RowGrid(threads_per_row(), p.rows);
          grid.y = unsigned(chunks);
          return Launch<&ForwardKernel<threads_per_row(), v(), T>>(
              {.grid = grid, .block = dim3(kRowBlockThreads), .stream = stream}, p.rows, p.vocab,
              kCrossEntropyChunk, logits, p.labels, p.ignore_index, p.first_bad_row, lo, ls,
              partials);
        }));
    if (chunks == 1) return absl::OkStatus();
    const unsigned blocks = unsigned(std::min<int64_t>((p.rows + 255) / 256, 4096));
    return Launch<&MergeChunksKernel<T>>(
        {.grid = dim3(blocks), .block = dim3(256), .stream = stream}, p.rows, p.vocab, chunks,
        logits, p.labels, p.ignore_index, p.first_bad_row, partials, lo, ls);
  });
}

absl::Status LaunchCrossEntropyBackward(const CrossEntropyProblem& p, const void* lse,
                                        const void* grad_losses, void* glogits,
                                        cudaStream_t stream) {
  LOOM_RETURN_IF_ERROR(
      Check(p, {{"lse", lse}, {"grad_losses", grad_losses}, {"glogits", glogits}}));
  if (p.rows == 0) return absl::OkStatus();
  const int64_t chunks = Chunks(p);
  if (chunks > kMaxGridY) {
    return absl::InvalidArgumentError(
        absl::StrCat("CrossEntropy: a vocabulary of ", p.vocab, " exceeds the grid"));
  }
  return DispatchDeviceFloat(p.dtype, [&](auto tag) -> absl::Status {
    using T = decltype(tag);
    using S = stat_t<T>;
    return DispatchRowShape<T>(p.vocab, {p.logits, glogits}, [&](auto threads_per_row, auto v) {
      dim3 grid = RowGrid(threads_per_row(), p.rows);
      grid.y = unsigned(chunks);
      return Launch<&BackwardKernel<threads_per_row(), v(), T>>(
          {.grid = grid, .block = dim3(kRowBlockThreads), .stream = stream}, p.rows, p.vocab,
          kCrossEntropyChunk, static_cast<const T*>(p.logits), p.labels, p.ignore_index,
          p.first_bad_row, static_cast<const S*>(lse), static_cast<const S*>(grad_losses),
          static_cast<T*>(glogits));
    });
  });
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
