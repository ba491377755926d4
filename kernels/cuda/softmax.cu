// Softmax and log-softmax, forward and backward (see softmax.h; rows are
// split between threads as row_loops.h describes). A is the accumulation
// type: f64 for f64, f32 otherwise.
#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/block_reduce.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_types.h"
#include "kernels/cuda/row_loops.h"
#include "kernels/cuda/softmax.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

template <int kThreadsPerRow, int V, typename T>
__global__ void SoftmaxKernel(int64_t rows, int64_t cols, const T* x, bool log, T* out) {
  using A = stat_t<T>;
  int64_t row;
  int lane;
  if (!RowOfThread<kThreadsPerRow>(rows, &row, &lane)) return;
  const T* xr = x + row * cols;
  T* orow = out + row * cols;
  MaxSum<A> ms = EmptyMaxSum<A>();
  ForEachInRow<V>(xr, cols, lane, kThreadsPerRow,
                  [&](int64_t, T v) { Accumulate(ms, A(Load(v))); });
  ms = RowReduce<kThreadsPerRow>(ms, MaxSumOp{});
  const A mx = ms.max;
  if (log) {
    const A log_sum = Log(ms.sum);
    TransformRow<V>(xr, orow, cols, lane, kThreadsPerRow,
                    [&](T v) { return Store<T>(compute_t<T>((A(Load(v)) - mx) - log_sum)); });
  } else {
    const A inv_sum = A(1) / ms.sum;
    TransformRow<V>(xr, orow, cols, lane, kThreadsPerRow,
                    [&](T v) { return Store<T>(compute_t<T>(Exp(A(Load(v)) - mx) * inv_sum)); });
  }
}

template <int kThreadsPerRow, int V, typename T>
__global__ void SoftmaxBackwardKernel(int64_t rows, int64_t cols, const T* y, const T* gy, bool log,
                                      T* gx) {
  using A = stat_t<T>;
  int64_t row;
  int lane;
  if (!RowOfThread<kThreadsPerRow>(rows, &row, &lane)) return;
  const T* yr = y + row * cols;
  const T* gyr = gy + row * cols;
  T* gxr = gx + row * cols;
  A s = 0;
  if (log) {
    ForEachInRow<V>(gyr, cols, lane, kThreadsPerRow, [&](int64_t, T g) { s += A(Load(g)); });
  } else {
    ForEachInRow2<V>(yr, gyr, cols, lane, kThreadsPerRow,
                     [&](int64_t, T yv, T g) { s += A(Load(g)) * A(Load(yv)); });
  }
  s = RowReduce<kThreadsPerRow>(s, SumOp{});
  if (log) {
    TransformRow2<V>(yr, gyr, gxr, cols, lane, kThreadsPerRow, [&](T yv, T g) {
      return Store<T>(compute_t<T>(A(Load(g)) - Exp(A(Load(yv))) * s));
    });
  } else {
    TransformRow2<V>(yr, gyr, gxr, cols, lane, kThreadsPerRow, [&](T yv, T g) {
      return Store<T>(compute_t<T>(A(Load(yv)) * (A(Load(g)) - s)));
    });
  }
}

absl::Status CheckRows(const char* op, DType dtype, int64_t rows, int64_t cols,
                       std::initializer_list<std::pair<const char*, const void*>> arrays) {
  if (!IsFloating(dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, ": expected a floating dtype (f32, f64, bf16, f16), got ", DTypeName(dtype)));
  }
  if (rows < 0 || cols < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": negative shape [", rows, ", ", cols, "]"));
  }
  if (rows > int64_t(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": ", rows, " rows exceed the grid"));
  }
  for (const auto& [name, ptr] : arrays) {
    if (rows * cols > 0 && ptr == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(op, ": ", name, " is null"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LaunchSoftmax(DType dtype, int64_t rows, int64_t cols, const void* x, bool log,
                           void* out, cudaStream_t stream) {
  LOOM_RETURN_IF_ERROR(CheckRows("Softmax", dtype, rows, cols, {{"x", x}, {"out", out}}));
  if (rows == 0 || cols == 0) return absl::OkStatus();
  return DispatchDeviceFloat(dtype, [&](auto tag) {
    using T = decltype(tag);
    return DispatchRowShape<T>(cols, {x, out}, [&](auto threads_per_row, auto v) {
      return Launch<&SoftmaxKernel<threads_per_row(), v(), T>>(
          {.grid = RowGrid(threads_per_row(), rows),
           .block = dim3(kRowBlockThreads),
           .stream = stream},
          rows, cols, static_cast<const T*>(x), log, static_cast<T*>(out));
    });
  });
}

absl::Status LaunchSoftmaxBackward(DType dtype, int64_t rows, int64_t cols, const void* y,
                                   const void* gy, bool log, void* gx, cudaStream_t stream) {
  LOOM_RETURN_IF_ERROR(
      CheckRows("SoftmaxBackward", dtype, rows, cols, {{"y", y}, {"gy", gy}, {"gx", gx}}));
  if (rows == 0 || cols == 0) return absl::OkStatus();
  return DispatchDeviceFloat(dtype, [&](auto tag) {
    using T = decltype(tag);
    return DispatchRowShape<T>(cols, {y, gy, gx}, [&](auto threads_per_row, auto v) {
      return Launch<&SoftmaxBackwardKernel<threads_per_row(), v(), T>>(
          {.grid = RowGrid(threads_per_row(), rows),
           .block = dim3(kRowBlockThreads),
           .stream = stream},
          rows, cols, static_cast<const T*>(y), static_cast<const T*>(gy), log,
          static_cast<T*>(gx));
    });
  });
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
