// Index arithmetic of strided views, for tests that build non-contiguous
// operands (transposed, broadcast, permuted) in a HostBuffer.
//
//   const std::vector<int64_t> sizes = {9, 7}, strides = {1, 9};  // a transposed view
//   HostBuffer x(DType::kF32, Span(sizes, strides));
//   for (int64_t i = 0; i < Numel(sizes); ++i) x.Get(OffsetOf(i, sizes, strides));
#ifndef LOOM_KERNELS_CUDA_TESTING_STRIDED_LAYOUT_H_
#define LOOM_KERNELS_CUDA_TESTING_STRIDED_LAYOUT_H_

#include <cstdint>
#include <vector>

namespace loom::kernel_testing {

// Row-major linear index -> element offset for sizes/strides.
int64_t OffsetOf(int64_t linear, const std::vector<int64_t>& sizes,
                 const std::vector<int64_t>& strides);
// Elements a strided view spans: 1 + max offset (0 for an empty view).
int64_t Span(const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides);
// The row-major strides of a contiguous tensor of `sizes`.
std::vector<int64_t> Contiguous(const std::vector<int64_t>& sizes);
int64_t Numel(const std::vector<int64_t>& sizes);

}  // namespace loom::kernel_testing

#endif  // LOOM_KERNELS_CUDA_TESTING_STRIDED_LAYOUT_H_
