// Row-wise kernels over contiguous [rows, cols] arrays (softmax,
// cross_entropy): which threads own a row, reductions over the row, and loops
// over its elements.
//
// A row belongs to a warp (kThreadsPerRow = 32, 8 rows per block of
// kRowBlockThreads, shuffles only) when it has at most kWarpRowMax elements,
// else to a whole block (kThreadsPerRow = kRowBlockThreads). The threads of a
// row split it in 16-byte vectors of V elements when V > 1 (the launcher
// picks V > 1 only when cols % V == 0 and the pointers are 16-byte aligned),
// so consecutive threads touch consecutive vectors.
//
//   // host
//   return DispatchRowShape<T>(cols, {x, out}, [&](auto threads_per_row, auto v) {
//     return Launch<&Kernel<threads_per_row(), v(), T>>(
//         {.grid = RowGrid(threads_per_row(), rows), .block = dim3(kRowBlockThreads)}, ...);
//   });
//   // device
//   if (!RowOfThread<kThreadsPerRow>(rows, &row, &lane)) return;
//   ForEachInRow<V>(x_row, cols, lane, kThreadsPerRow, [&](int64_t j, T v) { ... });
//   sum = RowReduce<kThreadsPerRow>(sum, SumOp{});
//   TransformRow<V>(x_row, y_row, cols, lane, kThreadsPerRow, [&](T v) { return ...; });
//
// Include after kernels/cuda/device/compat.h.
#ifndef LOOM_KERNELS_CUDA_ROW_LOOPS_H_
#define LOOM_KERNELS_CUDA_ROW_LOOPS_H_

#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "kernels/cuda/block_reduce.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_types.h"

namespace loom::LOOM_CUDA_NAMESPACE {

inline constexpr int kRowBlockThreads = 256;
inline constexpr int64_t kWarpRowMax = 1024;

// Host: calls launch(integral_constant threads_per_row, integral_constant V)
// for rows of `cols` elements of T over the arrays `ptrs`.
template <typename T, typename Fn>
decltype(auto) DispatchRowShape(int64_t cols, std::initializer_list<const void*> ptrs,
                                Fn&& launch) {
  constexpr int kV = kVecWidth<T>;
  bool vectorize = cols % kV == 0;
  for (const void* p : ptrs) vectorize = vectorize && AllAligned(16, p);
  using Warp = std::integral_constant<int, 32>;
  using Block = std::integral_constant<int, kRowBlockThreads>;
  using Vector = std::integral_constant<int, kV>;
  using Scalar = std::integral_constant<int, 1>;
  if (cols <= kWarpRowMax) return vectorize ? launch(Warp{}, Vector{}) : launch(Warp{}, Scalar{});
  return vectorize ? launch(Block{}, Vector{}) : launch(Block{}, Scalar{});
}

// Host: blocks for `rows` rows (x only; the caller may add a y dimension).
inline dim3 RowGrid(int threads_per_row, int64_t rows) {
  const int64_t rows_per_block = kRowBlockThreads / threads_per_row;
  return dim3(static_cast<unsigned>((rows + rows_per_block - 1) / rows_per_block));
}

// The row of this thread and its lane among the row's threads; false for the
// warps of the last block that have no row (whole warps, so no collective is
// left half-entered).
template <int kThreadsPerRow>
__device__ __forceinline__ bool RowOfThread(int64_t rows, int64_t* row, int* lane) {
  constexpr int kRowsPerBlock = kRowBlockThreads / kThreadsPerRow;
  *row = int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kThreadsPerRow;
  *lane = int(threadIdx.x % kThreadsPerRow);
  return *row < rows;
}

// op over the values of the row's threads, given to each of them.
template <int kThreadsPerRow, typename R, typename Op>
__device__ __forceinline__ R RowReduce(R v, Op op) {
  if constexpr (kThreadsPerRow == 32) {
    return WarpReduce(v, op);
  } else {
    return BlockReduce(v, op);
  }
}

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
