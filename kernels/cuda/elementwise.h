// Elementwise kernels on CUDA devices: copy/cast, fill, unary and binary math,
// affine and scalar power, with the semantics of the matching Backend methods
// (runtime/backend.h) and the CPU's rounding (kernels/cpu/elementwise.cc).
//
//   const int64_t sizes[] = {4, 5};
//   LOOM_RETURN_IF_ERROR(LaunchBinary(BinaryOp::kAdd, sizes,
//       {.data = a, .dtype = DType::kBF16, .strides = a_strides},
//       {.data = b, .dtype = DType::kBF16, .strides = {0, 1}},   // broadcast row
//       {.data = out, .dtype = DType::kBF16, .strides = {5, 1}}, stream));
//
// Every operand has the common `sizes` and its own element strides (0 for a
// broadcast dim). When all operands are contiguous and 16-byte aligned the
// kernel moves 16 bytes per access; otherwise a strided kernel walks the
// dims that remain after merging jointly contiguous ones (at most 8, kMaxDims
// of strided_index.h: any rank works as long as the layout merges that far).
// 16-bit floats compute in f32, everything else in its own type. Launches are
// asynchronous on `stream`; bad arguments come back as InvalidArgument.
#ifndef LOOM_KERNELS_CUDA_ELEMENTWISE_H_
#define LOOM_KERNELS_CUDA_ELEMENTWISE_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "kernels/cuda/device/namespace.h"
#include "runtime/backend.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

// A strided array in device memory: element (i0, i1, ...) is at
// data + sum_d(i_d * strides[d]) elements.
struct ConstArray {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  absl::Span<const int64_t> strides;
};
struct MutableArray {
  void* data = nullptr;
  DType dtype = DType::kF32;
  absl::Span<const int64_t> strides;
};

// out = cast(src): any dtype to any dtype (Backend::Copy).
absl::Status LaunchCopy(absl::Span<const int64_t> sizes, const ConstArray& src,
                        const MutableArray& out, cudaStream_t stream);

// Every element of out = value rounded to out's dtype.
absl::Status LaunchFill(absl::Span<const int64_t> sizes, const MutableArray& out, double value,
                        cudaStream_t stream);

// out = op(x); x and out of one arithmetic dtype (integers: kNeg, kAbs, kSquare, kRelu).
absl::Status LaunchUnary(UnaryOp op, absl::Span<const int64_t> sizes, const ConstArray& x,
                         const MutableArray& out, cudaStream_t stream);

// out = op(a, b); one arithmetic dtype for all three (comparisons write 1 or 0).
absl::Status LaunchBinary(BinaryOp op, absl::Span<const int64_t> sizes, const ConstArray& a,
                          const ConstArray& b, const MutableArray& out, cudaStream_t stream);

// out = alpha * x + beta, with alpha and beta first converted to the compute type.
absl::Status LaunchAffine(absl::Span<const int64_t> sizes, const ConstArray& x, double alpha,
                          double beta, const MutableArray& out, cudaStream_t stream);

// out = x ^ exponent; floating dtypes.
absl::Status LaunchPowScalar(absl::Span<const int64_t> sizes, const ConstArray& x, double exponent,
                             const MutableArray& out, cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_ELEMENTWISE_H_
