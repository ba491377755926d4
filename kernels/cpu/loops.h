// Strided N-d iteration shared by the CPU elementwise kernels.
//
// ForEachStrided walks the elements of several same-shaped tensor views in
// row-major order, in parallel chunks, and hands the element offset of each
// operand to `fn`. Adjacent dims that are contiguous for every operand are
// merged first, so a contiguous op becomes one flat loop.
#ifndef LOOM_KERNELS_CPU_LOOPS_H_
#define LOOM_KERNELS_CPU_LOOPS_H_

#include <algorithm>
#include <array>
#include <cstdint>

#include "runtime/parallel.h"
#include "runtime/tensor.h"

namespace loom::cpu {

inline constexpr int64_t kElementwiseGrain = 32768;

template <int N>
struct StridedLayout {
  Dims sizes;
  std::array<Dims, N> strides;
};

// Merges dims that are jointly contiguous and drops size-1 dims.
template <int N>
StridedLayout<N> Coalesce(const Dims& sizes, const std::array<const Dims*, N>& strides) {
  StridedLayout<N> out;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    bool merge = !out.sizes.empty();
    for (int k = 0; k < N && merge; ++k) {
      merge = out.strides[k].back() == (*strides[k])[d] * sizes[d];
    }
    if (merge) {
      out.sizes.back() *= sizes[d];
      for (int k = 0; k < N; ++k) out.strides[k].back() = (*strides[k])[d];
    } else {
      out.sizes.push_back(sizes[d]);
      for (int k = 0; k < N; ++k) out.strides[k].push_back((*strides[k])[d]);
    }
  }
  if (out.sizes.empty()) {  // a scalar
    out.sizes.push_back(1);
    for (int k = 0; k < N; ++k) out.strides[k].push_back(1);
  }
  return out;
}

// fn(base, inner_stride, n) for every row of the coalesced iteration space:
// the row's elements are base[k] + i * inner_stride[k], i < n, for operand k.
// Kernels specialize the common stride patterns (1/1/1, 1/1/0) into tight loops.
template <int N, typename Fn>
void ForEachStridedRow(const std::array<const Tensor*, N>& tensors, Fn&& fn) {
  const Tensor& first = *tensors[0];
  std::array<const Dims*, N> strides;
  for (int k = 0; k < N; ++k) strides[k] = &tensors[k]->strides();
  const StridedLayout<N> L = Coalesce<N>(first.sizes(), strides);
  const int nd = int(L.sizes.size());
  const int64_t inner = L.sizes[nd - 1];
  std::array<int64_t, N> inner_stride;
  for (int k = 0; k < N; ++k) inner_stride[k] = L.strides[k][nd - 1];
  int64_t outer = 1;
  for (int d = 0; d < nd - 1; ++d) outer *= L.sizes[d];
  const int64_t grain_rows = std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(inner, 1));
  ParallelFor(outer, grain_rows, [&](int64_t row_begin, int64_t row_end) {
    Dims idx(std::max(nd - 1, 0), 0);
    int64_t rem = row_begin;
    for (int d = nd - 2; d >= 0; --d) {
      idx[d] = rem % L.sizes[d];
      rem /= L.sizes[d];
    }
    for (int64_t row = row_begin; row < row_end; ++row) {
      std::array<int64_t, N> base{};
      for (int k = 0; k < N; ++k) {
        for (int d = 0; d < nd - 1; ++d) base[k] += idx[d] * L.strides[k][d];
      }
      fn(base, inner_stride, inner);
      for (int d = nd - 2; d >= 0; --d) {
        if (++idx[d] < L.sizes[d]) break;
        idx[d] = 0;
      }
    }
  });
}

// fn(const std::array<int64_t, N>& offsets) for every element; offsets are in
// elements relative to each tensor's data pointer.
template <int N, typename Fn>
void ForEachStrided(const std::array<const Tensor*, N>& tensors, Fn&& fn) {
  ForEachStridedRow<N>(tensors, [&](std::array<int64_t, N> off,
                                    const std::array<int64_t, N>& stride, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      fn(off);
      for (int k = 0; k < N; ++k) off[k] += stride[k];
    }
  });
}

// True when every tensor is contiguous with the same shape: kernels then use
// a flat loop the compiler can vectorize.
template <int N>
bool AllContiguous(const std::array<const Tensor*, N>& tensors) {
  for (const Tensor* t : tensors) {
    if (!t->is_contiguous()) return false;
  }
  return true;
}

// fn(begin, end) over a flat range, parallel.
template <typename Fn>
void ForEachFlat(int64_t n, Fn&& fn) {
  ParallelFor(n, kElementwiseGrain, fn);
}

// Rows per parallel chunk for row-wise kernels over rows of `d` elements:
// about kElementwiseGrain elements.
inline int64_t RowGrain(int64_t d) {
  return std::max<int64_t>(1, kElementwiseGrain / std::max<int64_t>(d, 1));
}

// Sum of term(j) over [0, n) in f64, in 8 interleaved partial sums combined in
// a fixed order: deterministic, and free of one long chain of dependent adds
// (which would bound the loop at one add latency per element).
template <typename Term>
inline double RowSum(int64_t n, Term&& term) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int k = 0; k < 8; ++k) acc[k] += term(j + k);
  }
  for (int k = 0; j < n; ++j, ++k) acc[k] += term(j);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace loom::cpu

#endif  // LOOM_KERNELS_CPU_LOOPS_H_
