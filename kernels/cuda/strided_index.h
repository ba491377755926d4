// N-d strided indexing for the elementwise and reduce kernels.
//
//   LOOM_ASSIGN_OR_RETURN(StridedIndex<2> index,
//                         MakeStridedIndex<2>("Copy", sizes, {out.strides, src.strides}));
//   // in a kernel, for each linear (row-major) element index i:
//   int64_t off[2];
//   index.Offsets<uint32_t>(i, off);   // off[k]: element offset into operand k
//
// MakeStridedIndex drops size-1 dims and merges dims that are contiguous for
// every operand, so a transposed or broadcast view usually becomes one to
// three dims; at most kMaxDims may remain. Offsets() divides by the sizes
// with IndexT: 32-bit division when the tensor has fewer than 2^32 elements
// (much cheaper on the GPU), 64-bit otherwise.
// Include after kernels/cuda/device/compat.h.
#ifndef LOOM_KERNELS_CUDA_STRIDED_INDEX_H_
#define LOOM_KERNELS_CUDA_STRIDED_INDEX_H_

#include <array>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "kernels/cuda/device/compat.h"

namespace loom::LOOM_CUDA_NAMESPACE {

// Dims of a strided kernel after merging.
inline constexpr int kMaxDims = 8;

template <int N>
struct StridedIndex {
  int ndim = 0;  // >= 1
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  template <typename IndexT>
  __device__ __forceinline__ void Offsets(IndexT linear, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d > 0; --d) {
      const IndexT size = IndexT(sizes[d]);
      const IndexT q = linear / size;
      const int64_t r = int64_t(linear - q * size);
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += r * strides[k][d];
      linear = q;
    }
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] += int64_t(linear) * strides[k][0];
  }
};

// Validates `strides` against `sizes` (one stride per dim, none negative) and
// merges dims. `what` names the op and `names` the operands in messages.
template <int N>
absl::StatusOr<StridedIndex<N>> MakeStridedIndex(
    const char* what, absl::Span<const int64_t> sizes,
    const std::array<absl::Span<const int64_t>, N>& strides,
    const std::array<const char*, N>& names) {
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": negative size in sizes [", absl::StrJoin(sizes, ", "), "]"));
    }
  }
  for (int k = 0; k < N; ++k) {
    if (strides[k].size() != sizes.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": ", names[k], " has ", strides[k].size(), " strides for ",
                       sizes.size(), " dims (sizes [", absl::StrJoin(sizes, ", "), "])"));
    }
    for (int64_t s : strides[k]) {
      if (s < 0) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": ", names[k],
                                                       " has a negative stride in [",
                                                       absl::StrJoin(strides[k], ", "), "]"));
      }
    }
  }
  StridedIndex<N> index;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    bool merge = index.ndim > 0;
    for (int k = 0; k < N && merge; ++k) {
      merge = index.strides[k][index.ndim - 1] == strides[k][d] * sizes[d];
    }
    if (merge) {
      index.sizes[index.ndim - 1] *= sizes[d];
      for (int k = 0; k < N; ++k) index.strides[k][index.ndim - 1] = strides[k][d];
      continue;
    }
    if (index.ndim == kMaxDims) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": sizes [", absl::StrJoin(sizes, ", "), "] with these strides need more than ",
          kMaxDims, " dims after merging contiguous ones; make an operand contiguous first"));
    }
    index.sizes[index.ndim] = sizes[d];
    for (int k = 0; k < N; ++k) index.strides[k][index.ndim] = strides[k][d];
    ++index.ndim;
  }
  if (index.ndim == 0) {  // a scalar, or all sizes 1
    index.ndim = 1;
    index.sizes[0] = 1;
    for (int k = 0; k < N; ++k) index.strides[k][0] = 1;
  }
  return index;
}

// True when the merged layout is one dim of stride 1 for every operand.
template <int N>
bool IsFlat(const StridedIndex<N>& index) {
  if (index.ndim != 1) return false;
  for (int k = 0; k < N; ++k) {
    if (index.strides[k][0] != 1 && index.sizes[0] > 1) return false;
  }
  return true;
}

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_STRIDED_INDEX_H_
