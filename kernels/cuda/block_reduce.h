// Warp and block reductions for the memory-bound kernels, deterministic by
// construction: a fixed butterfly over the lanes, then the warp totals
// combined in warp order. No atomics, so a result never depends on timing.
//
//   const float row_max = BlockReduce(local_max, MaxOp{});      // every thread gets it
//   MaxSum<float> norm = BlockReduce(local, MaxSumOp{});        // online softmax
//
// Every thread of the block must call BlockReduce (it has barriers) and the
// block size must be a multiple of 32. Combine functors must be commutative
// (a + b == b + a bit for bit, true of IEEE add, max and MaxSumOp), so every
// lane of the butterfly ends with the same bits.
// Include after kernels/cuda/device/compat.h.
#ifndef LOOM_KERNELS_CUDA_BLOCK_REDUCE_H_
#define LOOM_KERNELS_CUDA_BLOCK_REDUCE_H_

#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_types.h"

namespace loom::LOOM_CUDA_NAMESPACE {

inline constexpr unsigned kFullWarp = 0xFFFFFFFFu;

struct SumOp {
  template <typename C>
  __device__ __forceinline__ C operator()(C a, C b) const {
    return a + b;
  }
};

// NaN-propagating max: a NaN on either side wins.
struct MaxOp {
  template <typename C>
  __device__ __forceinline__ C operator()(C a, C b) const {
    return (b > a || IsNan(b)) ? b : a;
  }
};

// An online softmax normalizer: the max of the elements seen and the sum of
// exp(x - max) over them (FlashAttention's running statistics).
template <typename C>
struct MaxSum {
  C max;
  C sum;
};

template <typename C>
__device__ __forceinline__ MaxSum<C> EmptyMaxSum() {
  return {-Infinity<C>(), C(0)};
}

// Adds one element. -inf contributes nothing; NaN poisons the sum.
template <typename C>
__device__ __forceinline__ void Accumulate(MaxSum<C>& ms, C x) {
  if (x > ms.max) {
    ms.sum = ms.sum * Exp(ms.max - x) + C(1);
    ms.max = x;
  } else if (x != -Infinity<C>()) {
    ms.sum += Exp(x - ms.max);
  }
}

struct MaxSumOp {
  template <typename C>
  __device__ __forceinline__ MaxSum<C> operator()(MaxSum<C> a, MaxSum<C> b) const {
    const C m = a.max > b.max ? a.max : b.max;
    if (m == -Infinity<C>()) return {m, C(0)};  // both empty: exp(-inf - -inf) would be NaN
    return {m, a.sum * Exp(a.max - m) + b.sum * Exp(b.max - m)};
  }
};

// log-sum-exp of the elements summarized by `ms`.
template <typename C>
__device__ __forceinline__ C LogSumExp(MaxSum<C> ms) {
  return ms.max + Log(ms.sum);
}

template <typename C>
__device__ __forceinline__ C ShuffleXor(C v, int lane_mask) {
  return __shfl_xor_sync(kFullWarp, v, lane_mask);
}
template <typename C>
__device__ __forceinline__ MaxSum<C> ShuffleXor(MaxSum<C> v, int lane_mask) {
  return {__shfl_xor_sync(kFullWarp, v.max, lane_mask),
          __shfl_xor_sync(kFullWarp, v.sum, lane_mask)};
}

// Every lane of the (full) warp gets op over the 32 lanes' values.
template <typename T, typename Op>
__device__ __forceinline__ T WarpReduce(T v, Op op) {
#pragma unroll
  for (int lane_mask = 16; lane_mask > 0; lane_mask /= 2) v = op(v, ShuffleXor(v, lane_mask));
  return v;
}

// Every thread of the block gets op over all threads' values.
template <typename T, typename Op>
__device__ __forceinline__ T BlockReduce(T v, Op op) {
  LOOM_SHARED(T, warp_totals, 32);
  const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
  const int warps = int(blockDim.x) / 32;
  v = WarpReduce(v, op);
  __syncthreads();  // readers of a previous BlockReduce are done with warp_totals
  if (lane == 0) warp_totals[warp] = v;
  __syncthreads();
  T total = warp_totals[0];
  for (int w = 1; w < warps; ++w) total = op(total, warp_totals[w]);
  return total;
}

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_BLOCK_REDUCE_H_
