// Embedding forward gather and deterministic backward scatter-add (see
// embedding.h for the design and the bit-identity argument).
#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/block_reduce.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_types.h"
#include "kernels/cuda/embedding.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

constexpr int kGatherThreads = 128;
constexpr int kScatterThreads = 128;
constexpr int kScatterWarps = kScatterThreads / 32;
// Columns of grad_weight per thread of the backward, and blocks it aims for.
constexpr int kColumnsPerThread = 4;
constexpr int64_t kColumnsPerBlock = int64_t(kScatterThreads) * kColumnsPerThread;
constexpr int64_t kTargetScatterBlocks = 512;
constexpr int64_t kMaxGridY = 65535;

template <typename I>
__device__ __forceinline__ bool ValidId(I id, int64_t vocab) {
  return id >= 0 && int64_t(id) < vocab;
}

// Row blockIdx.x of out, words blockIdx.y * blockDim.x + threadIdx.x, ... of it.
template <typename W, typename I>
__global__ void GatherKernel(int64_t vocab, int64_t words_per_row, const I* ids, const W* weight,
                             W* out, int32_t* first_bad_row) {
  const int64_t row = blockIdx.x;
  const I id = ids[row];
  const bool valid = ValidId(id, vocab);
  if (!valid && first_bad_row != nullptr && blockIdx.y == 0 && threadIdx.x == 0) {
    atomicMin(first_bad_row, int(row));
  }
  const W* src = weight + (valid ? int64_t(id) : 0) * words_per_row;
  W* dst = out + row * words_per_row;
  for (int64_t w = int64_t(blockIdx.y) * blockDim.x + threadIdx.x; w < words_per_row;
       w += int64_t(gridDim.y) * blockDim.x) {
    dst[w] = valid ? src[w] : W{};
  }
}

// Block (blockIdx.x, blockIdx.y): vocabulary rows [v_lo, v_hi) of range
// blockIdx.x, columns [c_lo, c_lo + kColumnsPerBlock) of chunk blockIdx.y.
template <typename G, typename W, typename I>
__global__ void ScatterAddKernel(int64_t rows, int64_t vocab, int64_t dim, int64_t vocab_per_block,
                                 const I* ids, const G* grad_out, W* grad_weight,
                                 int32_t* first_bad_row) {
  using C = compute_t<W>;
  LOOM_SHARED(int64_t, tokens, kScatterThreads);  // this step's tokens in range, in order
  LOOM_SHARED(int, warp_counts, kScatterWarps);
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  const int64_t v_lo = int64_t(blockIdx.x) * vocab_per_block;
  const int64_t v_hi = min(vocab, v_lo + vocab_per_block);
  const int64_t c_lo = int64_t(blockIdx.y) * kColumnsPerBlock;
  for (int64_t step = 0; step < rows; step += kScatterThreads) {
    const int64_t i = step + threadIdx.x;
    const int64_t id = i < rows ? int64_t(ids[i]) : -1;
    const bool mine = id >= v_lo && id < v_hi;
    if (i < rows && !ValidId(id, vocab) && first_bad_row != nullptr && blockIdx.x == 0 &&
        blockIdx.y == 0) {
      atomicMin(first_bad_row, int(i));
    }
    // Compact this step's tokens of the range, keeping token order (two barriers per step).
    const unsigned ballot = __ballot_sync(kFullWarp, mine);
    if (lane == 0) warp_counts[warp] = __popc(ballot);
    __syncthreads();
    int offset = __popc(ballot & ((1u << lane) - 1u)), total = 0;
    for (int w = 0; w < kScatterWarps; ++w) {
      if (w < warp) offset += warp_counts[w];
      total += warp_counts[w];
    }
    if (mine) tokens[offset] = i;
    __syncthreads();
    for (int k = 0; k < total; ++k) {
      const int64_t t = tokens[k];
      const int64_t v = int64_t(ids[t]);
      const G* src = grad_out + t * dim;
      W* dst = grad_weight + v * dim;
#pragma unroll
      for (int j = 0; j < kColumnsPerThread; ++j) {
        // Thread-interleaved columns: consecutive threads touch consecutive elements.
        const int64_t col = c_lo + int64_t(j) * kScatterThreads + threadIdx.x;
        if (col < dim) dst[col] = Store<W>(Load(dst[col]) + C(Load(src[col])));
      }
    }
    // No barrier needed here: the next step writes warp_counts (read before this
    // step's second barrier) and then waits at its first barrier, which every
    // thread reaches only after it is done reading this step's tokens.
  }
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

absl::Status CheckProblem(const char* op, const EmbeddingProblem& p) {
  if (p.rows < 0 || p.vocab < 0 || p.dim < 0) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": negative size (rows ", p.rows, ", vocab ",
                                                   p.vocab, ", dim ", p.dim, ")"));
  }
  if (p.ids_dtype != DType::kI32 && p.ids_dtype != DType::kI64) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": ids must be i32 or i64, got ", DTypeName(p.ids_dtype)));
  }
  if (p.rows > int64_t(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", p.rows, " ids exceed the grid"));
  }
  if (p.rows > 0 && p.ids == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ids is null"));
  }
  return absl::OkStatus();
}

template <typename Fn>
absl::Status DispatchIds(DType dtype, Fn&& fn) {
  if (dtype == DType::kI32) return fn(int32_t{});
  return fn(int64_t{});
}

template <typename W, typename I>
absl::Status LaunchGather(const EmbeddingProblem& p, int64_t row_bytes, const void* weight,
                          void* out, cudaStream_t stream) {
  const int64_t words = row_bytes / int64_t(sizeof(W));
  const int64_t chunks = std::clamp<int64_t>(CeilDiv(words, kGatherThreads), 1, kMaxGridY);
  return Launch<&GatherKernel<W, I>>({.grid = dim3(unsigned(p.rows), unsigned(chunks)),
                                      .block = dim3(kGatherThreads),
                                      .stream = stream},
                                     p.vocab, words, static_cast<const I*>(p.ids),
                                     static_cast<const W*>(weight), static_cast<W*>(out),
                                     p.first_bad_row);
}

}  // namespace

absl::Status LaunchEmbeddingForward(const EmbeddingProblem& p, DType dtype, const void* weight,
                                    void* out, cudaStream_t stream) {
  LOOM_RETURN_IF_ERROR(CheckProblem("Embedding", p));
  const int64_t row_bytes = p.dim * int64_t(SizeOf(dtype));
  if (p.rows == 0 || row_bytes == 0) return absl::OkStatus();
  if (out == nullptr) return absl::InvalidArgumentError("Embedding: out is null");
  if (p.vocab > 0 && weight == nullptr) {
    return absl::InvalidArgumentError("Embedding: weight is null");
  }
  return DispatchIds(p.ids_dtype, [&](auto itag) {
    using I = decltype(itag);
    // The widest word that divides the row and fits both pointers' alignment.
    auto fits = [&](int64_t w) { return row_bytes % w == 0 && AllAligned(size_t(w), weight, out); };
    if (fits(16)) return LaunchGather<uint4, I>(p, row_bytes, weight, out, stream);
    if (fits(4)) return LaunchGather<uint32_t, I>(p, row_bytes, weight, out, stream);
    if (fits(2)) return LaunchGather<uint16_t, I>(p, row_bytes, weight, out, stream);
    return LaunchGather<uint8_t, I>(p, row_bytes, weight, out, stream);
  });
}

absl::Status LaunchEmbeddingBackward(const EmbeddingProblem& p, DType grad_out_dtype,
                                     const void* grad_out, DType grad_weight_dtype,
                                     void* grad_weight, cudaStream_t stream) {
  LOOM_RETURN_IF_ERROR(CheckProblem("EmbeddingBackward", p));
  if (!IsFloating(grad_out_dtype) || !IsFloating(grad_weight_dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("EmbeddingBackward: grad_out (", DTypeName(grad_out_dtype),
                     ") and grad_weight (", DTypeName(grad_weight_dtype), ") must be floating"));
  }
  if (p.rows == 0 || p.dim == 0 || p.vocab == 0) return absl::OkStatus();
  if (grad_out == nullptr || grad_weight == nullptr) {
    return absl::InvalidArgumentError("EmbeddingBackward: grad_out or grad_weight is null");
  }
  const int64_t column_chunks = CeilDiv(p.dim, kColumnsPerBlock);
  if (column_chunks > kMaxGridY) {
    return absl::InvalidArgumentError(
        absl::StrCat("EmbeddingBackward: dim ", p.dim, " exceeds the grid"));
  }
  // Vocabulary ranges: enough blocks to fill the GPU. Any split gives the same bits.
  const int64_t ranges =
      std::clamp<int64_t>(CeilDiv(kTargetScatterBlocks, column_chunks), 1, p.vocab);
  const int64_t vocab_per_block = CeilDiv(p.vocab, ranges);
  const dim3 grid(unsigned(CeilDiv(p.vocab, vocab_per_block)), unsigned(column_chunks));
  return DispatchIds(p.ids_dtype, [&](auto itag) {
    using I = decltype(itag);
    return DispatchDeviceFloat(grad_out_dtype, [&](auto gtag) {
      using G = decltype(gtag);
      return DispatchDeviceFloat(grad_weight_dtype, [&](auto wtag) {
        using W = decltype(wtag);
        return Launch<&ScatterAddKernel<G, W, I>>(
            {.grid = grid, .block = dim3(kScatterThreads), .stream = stream}, p.rows, p.vocab,
            p.dim, vocab_per_block, static_cast<const I*>(p.ids), static_cast<const G*>(grad_out),
            static_cast<W*>(grad_weight), p.first_bad_row);
      });
    });
  });
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
