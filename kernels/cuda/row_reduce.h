// Fixed-order sums across the threads that share a row, for the fused row
// kernels (rmsnorm.cu). Every thread gets the same bits, and the result does
// not depend on scheduling: butterflies combine the same pairs in the same
// order on every run (IEEE addition is commutative, so both lanes of a pair
// compute the same value).
//
//   LOOM_SHARED(float, scratch, kRowSumScratch);
//   const float total = RowSum(partial, scratch);  // over threadIdx.x of this threadIdx.y
//
// Row layout: blockDim.x threads (a multiple of 32) cooperate on one row,
// blockDim.y rows per block. With blockDim.x == 32 the sum is a warp shuffle
// butterfly and needs no barrier; wider rows combine per-warp sums through
// shared memory with two __syncthreads, so every thread of the block must call
// RowSum the same number of times.
#ifndef LOOM_KERNELS_CUDA_ROW_REDUCE_H_
#define LOOM_KERNELS_CUDA_ROW_REDUCE_H_

#include "kernels/cuda/device/compat.h"

namespace loom::LOOM_CUDA_NAMESPACE {

// Elements of the shared scratch RowSum needs: one slot per warp of the block.
inline constexpr int kRowSumScratch = 32;

template <typename T>
__device__ __forceinline__ T WarpSum(T v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum of `v` over the blockDim.x threads of this thread's row. `scratch` holds
// kRowSumScratch elements of block shared memory (the block has at most 32
// warps, so every warp of every row gets a slot).
template <typename T>
__device__ __forceinline__ T RowSum(T v, T* scratch) {
  v = WarpSum(v);
  if (blockDim.x == 32) return v;  // block-uniform: no thread takes the other branch
  const int warps_per_row = blockDim.x / 32;
  const int lane = threadIdx.x % 32;
  T* row_partials = scratch + threadIdx.y * warps_per_row;
  if (lane == 0) row_partials[threadIdx.x / 32] = v;
  __syncthreads();
  // Every warp of the row reads all partials and reduces them the same way.
  T total = lane < warps_per_row ? row_partials[lane] : T(0);
  total = WarpSum(total);
  __syncthreads();  // the next call may overwrite the partials
  return total;
}

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_ROW_REDUCE_H_
