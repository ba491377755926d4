// RMSNorm forward and backward (see rmsnorm.h).
//
// Layout: blockDim.x threads share a row (a power of two, 32..512, enough for
// one 16-byte vector per thread where the row allows), blockDim.y rows per
// block in the forward when a warp covers a row. Rows are read twice (sum of
// squares, then normalize); the second read hits L1/L2.
//
// The backward's weight gradient: block b handles rows b, b + grid, ...
// (kBackwardBlocks blocks at most, independent of the device) and sums
// gy * normed for its rows in row order, each thread for the columns it owns,
// in shared memory. The partials go to the workspace and a second kernel adds
// them in block order: no atomics, bit-identical on every run and device.
#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_numeric.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/row_reduce.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

constexpr int kMaxThreadsPerRow = 512;
constexpr int kRowsPerWarpBlock = 4;  // forward rows per block when one warp covers a row
constexpr int64_t kMaxForwardBlocks = 65536;
constexpr int64_t kBackwardBlocks = 256;
constexpr int kWeightGradSlices = 8;  // partial sums per column in the weight-gradient kernel
// Dynamic shared memory of the backward's accumulators: 160 KiB fits sm_80 and sm_90.
constexpr size_t kMaxBackwardSmem = 160 << 10;

// ---- Kernels.

template <typename T, int kVec>
__global__ void __launch_bounds__(kMaxThreadsPerRow)
    RmsNormForwardKernel(const T* x, int64_t x_stride, const T* w, compute_t<T> eps, T* y,
                         int64_t y_stride, compute_t<T>* rstd, int64_t rows, int dim) {
  using S = compute_t<T>;
  LOOM_SHARED(S, scratch, kRowSumScratch);
  const int chunks = dim / kVec;
  const int64_t row_step = int64_t(gridDim.x) * blockDim.y;
  // Every thread runs the same number of iterations: RowSum may hold barriers.
  for (int64_t base = int64_t(blockIdx.x) * blockDim.y; base < rows; base += row_step) {
    const int64_t row = base + threadIdx.y;
    const bool active = row < rows;
    S sum_sq = 0;
    if (active) {
      const T* xr = x + row * x_stride;
      for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
        const Vec<T, kVec> xp = LoadPack<kVec>(xr + c * kVec);
#pragma unroll
        for (int k = 0; k < kVec; ++k) {
          const S v = Load(xp.v[k]);
          sum_sq = FmaRn(v, v, sum_sq);
        }
      }
    }
    sum_sq = RowSum(sum_sq, scratch);
    if (!active) continue;
    // As the CPU (and HF): the mean is rounded to S before eps and the rsqrt.
    const S r = DivRn(S(1), SqrtRn(AddRn(DivRn(sum_sq, S(dim)), eps)));
    if (threadIdx.x == 0) rstd[row] = r;
    const T* xr = x + row * x_stride;
    T* yr = y + row * y_stride;
    for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
      const Vec<T, kVec> xp = LoadPack<kVec>(xr + c * kVec);
      const Vec<T, kVec> wp = LoadPack<kVec>(w + c * kVec);
      Vec<T, kVec> yp;
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        const S normed = RoundTo<T>(MulRn(Load(xp.v[k]), r));
        yp.v[k] = Store<T>(MulRn(Load(wp.v[k]), normed));
      }
      StorePack<kVec>(yr + c * kVec, yp);
    }
  }
}

// Dynamic shared memory: dim accumulators of S, element (c, k) of the row at
// [k * chunks + c] so that neighbouring threads hit neighbouring banks.
template <typename T, int kVec>
__global__ void __launch_bounds__(kMaxThreadsPerRow)
    RmsNormBackwardKernel(const T* gy, int64_t gy_stride, const T* x, int64_t x_stride, const T* w,
                          const compute_t<T>* rstd, T* gx, int64_t gx_stride,
                          compute_t<T>* partials, int64_t rows, int dim) {
  using S = compute_t<T>;
  LOOM_SHARED(S, scratch, kRowSumScratch);
  S* acc = DynamicShared<S>();
  const int chunks = dim / kVec;
  // Each thread only ever touches the accumulators of its own chunks: no barrier needed.
  for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
#pragma unroll
    for (int k = 0; k < kVec; ++k) acc[k * chunks + c] = S(0);
  }
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {  // block-uniform
    const S r = rstd[row];
    const T* gyr = gy + row * gy_stride;
    const T* xr = x + row * x_stride;
    S dot = 0;
    for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
      const Vec<T, kVec> gp = LoadPack<kVec>(gyr + c * kVec);
      const Vec<T, kVec> xp = LoadPack<kVec>(xr + c * kVec);
      const Vec<T, kVec> wp = LoadPack<kVec>(w + c * kVec);
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        const S g = Load(gp.v[k]), xv = Load(xp.v[k]);
        dot = FmaRn(MulRn(g, Load(wp.v[k])), xv, dot);
        const S normed = RoundTo<T>(MulRn(xv, r));
        S& a = acc[k * chunks + c];
        a = AddRn(a, MulRn(g, normed));
      }
    }
    dot = RowSum(dot, scratch);
    const S m = DivRn(MulRn(MulRn(r, r), dot), S(dim));
    T* gxr = gx + row * gx_stride;
    for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
      const Vec<T, kVec> gp = LoadPack<kVec>(gyr + c * kVec);
      const Vec<T, kVec> xp = LoadPack<kVec>(xr + c * kVec);
      const Vec<T, kVec> wp = LoadPack<kVec>(w + c * kVec);
      Vec<T, kVec> out;
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        const S gw = MulRn(Load(gp.v[k]), Load(wp.v[k]));
        out.v[k] = Store<T>(MulRn(r, SubRn(gw, MulRn(Load(xp.v[k]), m))));
      }
      StorePack<kVec>(gxr + c * kVec, out);
    }
  }
  S* mine = partials + int64_t(blockIdx.x) * dim;
  for (int c = threadIdx.x; c < chunks; c += blockDim.x) {
#pragma unroll
    for (int k = 0; k < kVec; ++k) mine[c * kVec + k] = acc[k * chunks + c];
  }
}

// gw[j] = sum of the per-block partials, in f64, in a fixed order: thread
// (x, y) of a 32 x kWeightGradSlices block sums partials y, y + slices, ...
// of column blockIdx.x * 32 + x; the slices are then added in order. Coalesced
// across x, and each thread has only num_partials / slices dependent loads.
template <typename T>
__global__ void __launch_bounds__(32 * kWeightGradSlices)
    RmsNormWeightGradKernel(const compute_t<T>* partials, int num_partials, int dim, T* gw) {
  using S = compute_t<T>;
  LOOM_SHARED(double, slice_sums, 32 * kWeightGradSlices);
  for (int base = blockIdx.x * 32; base < dim; base += gridDim.x * 32) {  // block-uniform
    const int j = base + threadIdx.x;
    double sum = 0;
    if (j < dim) {
      for (int b = threadIdx.y; b < num_partials; b += kWeightGradSlices) {
        sum += double(partials[int64_t(b) * dim + j]);
      }
    }
    slice_sums[threadIdx.y * 32 + threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && j < dim) {
      double total = 0;
      for (int y = 0; y < kWeightGradSlices; ++y) total += slice_sums[y * 32 + threadIdx.x];
      gw[j] = Store<T>(S(total));
    }
    __syncthreads();  // slice_sums is reused by the next columns
  }
}

// ---- Launch configuration.

// Threads per row: a power of two from 32 to kMaxThreadsPerRow, one vector each where possible.
int ThreadsPerRow(int chunks) {
  int t = 32;
  while (t < chunks && t < kMaxThreadsPerRow) t *= 2;
  return t;
}

absl::Status CheckRows(const char* op, DType dtype, int64_t rows, int64_t dim) {
  if (!IsFloating(dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": dtype ", DTypeName(dtype), " is not floating (f32, f64, bf16, f16)"));
  }
  if (rows < 0 || dim < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": rows ", rows, " and dim ", dim, " must be >= 0"));
  }
  if (dim > INT_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": dim ", dim, " exceeds 2^31 - 1"));
  }
  return absl::OkStatus();
}

absl::Status CheckMatrix(const char* op, const char* name, const void* p, int64_t stride,
                         int64_t dim) {
  if (p == nullptr) return absl::InvalidArgumentError(absl::StrCat(op, ": ", name, " is null"));
  if (stride < dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": ", name, " row stride ", stride, " is less than dim ", dim));
  }
  return absl::OkStatus();
}

absl::Status CheckVector(const char* op, const char* name, const void* p) {
  if (p == nullptr) return absl::InvalidArgumentError(absl::StrCat(op, ": ", name, " is null"));
  return absl::OkStatus();
}

// True when rows of `dim` elements at these pointers and strides allow kVecWidth<T> accesses.
template <typename T>
bool CanVectorize(int64_t dim, std::initializer_list<const void*> ptrs,
                  std::initializer_list<int64_t> strides) {
  const int v = kVecWidth<T>;
  if (dim % v != 0) return false;
  for (const void* p : ptrs) {
    if (!IsAligned<T>(p, v)) return false;
  }
  for (int64_t s : strides) {
    if (s % v != 0) return false;
  }
  return true;
}

template <typename T, int kVec>
absl::Status ForwardWith(const RmsNormForwardArgs& a, cudaStream_t stream) {
  using S = compute_t<T>;
  const int chunks = int(a.dim / kVec);
  const int tx = ThreadsPerRow(chunks);
  const int ty = tx >= 128 ? 1 : std::min(kRowsPerWarpBlock, 128 / tx);
  const int64_t blocks = std::min<int64_t>((a.rows + ty - 1) / ty, kMaxForwardBlocks);
  return Launch<&RmsNormForwardKernel<T, kVec>>(
      {.grid = dim3(unsigned(blocks)), .block = dim3(tx, ty), .stream = stream},
      static_cast<const T*>(a.x), a.x_stride, static_cast<const T*>(a.weight), S(a.eps),
      static_cast<T*>(a.y), a.y_stride, static_cast<S*>(a.rstd), a.rows, int(a.dim));
}

int64_t BackwardBlocks(int64_t rows) { return std::min(rows, kBackwardBlocks); }

template <typename T, int kVec>
absl::Status BackwardWith(const RmsNormBackwardArgs& a, cudaStream_t stream) {
  using S = compute_t<T>;
  const int64_t blocks = BackwardBlocks(a.rows);
  S* partials = static_cast<S*>(a.workspace);
  if (blocks > 0 && a.dim > 0) {
    const int chunks = int(a.dim / kVec);
    const size_t smem = size_t(a.dim) * sizeof(S);
    constexpr auto kKernel = &RmsNormBackwardKernel<T, kVec>;
    if (smem > (48 << 10)) LOOM_RETURN_IF_ERROR(SetMaxDynamicSharedMemory<kKernel>(smem));
    LOOM_RETURN_IF_ERROR(
        Launch<kKernel>({.grid = dim3(unsigned(blocks)),
                         .block = dim3(ThreadsPerRow(chunks)),
                         .dynamic_smem = smem,
                         .stream = stream},
                        static_cast<const T*>(a.gy), a.gy_stride, static_cast<const T*>(a.x),
                        a.x_stride, static_cast<const T*>(a.weight), static_cast<const S*>(a.rstd),
                        static_cast<T*>(a.gx), a.gx_stride, partials, a.rows, int(a.dim)));
  }
  if (a.dim == 0) return absl::OkStatus();
  const int64_t gw_blocks = std::min<int64_t>((a.dim + 31) / 32, kMaxForwardBlocks);
  return Launch<&RmsNormWeightGradKernel<T>>(
      {.grid = dim3(unsigned(gw_blocks)), .block = dim3(32, kWeightGradSlices), .stream = stream},
      static_cast<const S*>(partials), int(blocks), int(a.dim), static_cast<T*>(a.gw));
}

}  // namespace

absl::Status LaunchRmsNormForward(const RmsNormForwardArgs& a, cudaStream_t stream) {
  constexpr const char* kOp = "RmsNormForward";
  LOOM_RETURN_IF_ERROR(CheckRows(kOp, a.dtype, a.rows, a.dim));
  if (a.rows == 0) return absl::OkStatus();
  if (a.dim == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": dim is 0 for ", a.rows, " rows (the mean of an empty row)"));
  }
  LOOM_RETURN_IF_ERROR(CheckMatrix(kOp, "x", a.x, a.x_stride, a.dim));
  LOOM_RETURN_IF_ERROR(CheckMatrix(kOp, "y", a.y, a.y_stride, a.dim));
  LOOM_RETURN_IF_ERROR(CheckVector(kOp, "weight", a.weight));
  LOOM_RETURN_IF_ERROR(CheckVector(kOp, "rstd", a.rstd));
  if (!(a.eps >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": eps ", a.eps, " must be >= 0"));
  }
  return DispatchFloatingDType(a.dtype, "RmsNormForward input", [&](auto tag) {
    using T = decltype(tag);
    if (CanVectorize<T>(a.dim, {a.x, a.y, a.weight}, {a.x_stride, a.y_stride})) {
      return ForwardWith<T, kVecWidth<T>>(a, stream);
    }
    return ForwardWith<T, 1>(a, stream);
  });
}

size_t RmsNormBackwardWorkspaceBytes(DType dtype, int64_t rows, int64_t dim) {
  if (rows <= 0 || dim <= 0) return 0;
  const size_t stat = dtype == DType::kF64 ? sizeof(double) : sizeof(float);
  return size_t(BackwardBlocks(rows)) * size_t(dim) * stat;
}

absl::Status LaunchRmsNormBackward(const RmsNormBackwardArgs& a, cudaStream_t stream) {
  constexpr const char* kOp = "RmsNormBackward";
  LOOM_RETURN_IF_ERROR(CheckRows(kOp, a.dtype, a.rows, a.dim));
  if (a.dim == 0) return absl::OkStatus();
  LOOM_RETURN_IF_ERROR(CheckVector(kOp, "gw", a.gw));
  const size_t stat = a.dtype == DType::kF64 ? sizeof(double) : sizeof(float);
  if (size_t(a.dim) * stat > kMaxBackwardSmem) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": dim ", a.dim, " needs ", size_t(a.dim) * stat,
                     " bytes of shared-memory accumulators; at most ", kMaxBackwardSmem / stat,
                     " for ", DTypeName(a.dtype)));
  }
  if (a.rows > 0) {
    LOOM_RETURN_IF_ERROR(CheckMatrix(kOp, "gy", a.gy, a.gy_stride, a.dim));
    LOOM_RETURN_IF_ERROR(CheckMatrix(kOp, "x", a.x, a.x_stride, a.dim));
    LOOM_RETURN_IF_ERROR(CheckMatrix(kOp, "gx", a.gx, a.gx_stride, a.dim));
    LOOM_RETURN_IF_ERROR(CheckVector(kOp, "weight", a.weight));
    LOOM_RETURN_IF_ERROR(CheckVector(kOp, "rstd", a.rstd));
    if (a.workspace == nullptr || !IsAligned<char>(a.workspace, 16)) {
      return absl::InvalidArgumentError(absl::StrCat(
          kOp, ": workspace must be a 16-byte aligned buffer of RmsNormBackwardWorkspaceBytes = ",
          RmsNormBackwardWorkspaceBytes(a.dtype, a.rows, a.dim), " bytes"));
    }
  }
  return DispatchFloatingDType(a.dtype, "RmsNormBackward input", [&](auto tag) {
    using T = decltype(tag);
    if (CanVectorize<T>(a.dim, {a.gy, a.x, a.gx, a.weight},
                        {a.gy_stride, a.x_stride, a.gx_stride})) {
      return BackwardWith<T, kVecWidth<T>>(a, stream);
    }
    return BackwardWith<T, 1>(a, stream);
  });
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
