// Loops over one row of a contiguous [rows, cols] array, shared by the
// row-wise kernels (softmax, cross_entropy): the `threads` threads of a warp
// or block split the row, each reading 16-byte vectors of V elements when
// V > 1 (the launcher picks V > 1 only when cols % V == 0 and the pointers
// are 16-byte aligned), so consecutive threads touch consecutive vectors.
//
//   ForEachInRow<V>(x_row, cols, lane, threads, [&](int64_t j, T v) { ... });
//   TransformRow<V>(x_row, y_row, cols, lane, threads, [&](T v) { return ...; });
//
// Include after kernels/cuda/device/compat.h.
#ifndef LOOM_KERNELS_CUDA_ROW_LOOPS_H_
#define LOOM_KERNELS_CUDA_ROW_LOOPS_H_

#include <cstdint>

#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_types.h"

namespace loom::LOOM_CUDA_NAMESPACE {

// fn(j, row[j]) for this thread's elements j of the row.
template <int V, typename T, typename Fn>
__device__ __forceinline__ void ForEachInRow(const T* row, int64_t cols, int lane, int threads,
                                             Fn&& fn) {
  const Vec<T, V>* vrow = reinterpret_cast<const Vec<T, V>*>(row);
  for (int64_t j = lane; j < cols / V; j += threads) {
    const Vec<T, V> v = vrow[j];
#pragma unroll
    for (int k = 0; k < V; ++k) fn(j * V + k, v.v[k]);
  }
}

// fn(j, a[j], b[j]) for this thread's elements j of two rows.
template <int V, typename T, typename Fn>
__device__ __forceinline__ void ForEachInRow2(const T* a, const T* b, int64_t cols, int lane,
                                              int threads, Fn&& fn) {
  const Vec<T, V>* va = reinterpret_cast<const Vec<T, V>*>(a);
  const Vec<T, V>* vb = reinterpret_cast<const Vec<T, V>*>(b);
  for (int64_t j = lane; j < cols / V; j += threads) {
    const Vec<T, V> x = va[j], y = vb[j];
#pragma unroll
    for (int k = 0; k < V; ++k) fn(j * V + k, x.v[k], y.v[k]);
  }
}

// out[j] = fn(in[j]) for this thread's elements of the row.
template <int V, typename T, typename Fn>
__device__ __forceinline__ void TransformRow(const T* in, T* out, int64_t cols, int lane,
                                             int threads, Fn&& fn) {
  const Vec<T, V>* vin = reinterpret_cast<const Vec<T, V>*>(in);
  Vec<T, V>* vout = reinterpret_cast<Vec<T, V>*>(out);
  for (int64_t j = lane; j < cols / V; j += threads) {
    const Vec<T, V> x = vin[j];
    Vec<T, V> y;
#pragma unroll
    for (int k = 0; k < V; ++k) y.v[k] = fn(x.v[k]);
    vout[j] = y;
  }
}

// out[j] = fn(a[j], b[j]) for this thread's elements of the row.
template <int V, typename T, typename Fn>
__device__ __forceinline__ void TransformRow2(const T* a, const T* b, T* out, int64_t cols,
                                              int lane, int threads, Fn&& fn) {
  const Vec<T, V>* va = reinterpret_cast<const Vec<T, V>*>(a);
  const Vec<T, V>* vb = reinterpret_cast<const Vec<T, V>*>(b);
  Vec<T, V>* vout = reinterpret_cast<Vec<T, V>*>(out);
  for (int64_t j = lane; j < cols / V; j += threads) {
    const Vec<T, V> x = va[j], y = vb[j];
    Vec<T, V> z;
#pragma unroll
    for (int k = 0; k < V; ++k) z.v[k] = fn(x.v[k], y.v[k]);
    vout[j] = z;
  }
}

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_ROW_LOOPS_H_
