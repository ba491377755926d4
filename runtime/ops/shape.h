// Differentiable shape ops. Views (Reshape of contiguous data, Permute,
// Transpose, Slice, Select, Expand, Squeeze, Unsqueeze) share storage with
// their input; the rest copy.
#ifndef LOOM_RUNTIME_OPS_SHAPE_H_
#define LOOM_RUNTIME_OPS_SHAPE_H_

#include <vector>

#include "runtime/tensor.h"

namespace loom {

// One size may be -1 (inferred). A view when the strides allow, else a copy.
Tensor Reshape(const Tensor& x, DimsRef sizes);
Tensor Flatten(const Tensor& x, int start_dim = 0, int end_dim = -1);
Tensor Permute(const Tensor& x, absl::Span<const int> perm);
Tensor Transpose(const Tensor& x, int dim0, int dim1);
// Elements start, start+step, ... < end along `dim` (negative start/end count from the end).
Tensor Slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step = 1);
Tensor Select(const Tensor& x, int dim, int64_t index);
// Broadcasts size-1 dims (and new leading dims) to `sizes`; -1 keeps a size.
Tensor Expand(const Tensor& x, DimsRef sizes);
Tensor Unsqueeze(const Tensor& x, int dim);
Tensor Squeeze(const Tensor& x, int dim);
// x itself when already contiguous, else a contiguous copy.
Tensor Contiguous(const Tensor& x);
Tensor Clone(const Tensor& x);
// Conversion to another dtype (x itself if already of that dtype).
Tensor Cast(const Tensor& x, DType dtype);
Tensor Cat(const std::vector<Tensor>& xs, int dim);
// Pieces of the given sizes along `dim` (views).
std::vector<Tensor> Split(const Tensor& x, DimsRef sizes, int dim);
// `chunks` equal pieces (the last may be smaller).
std::vector<Tensor> Chunk(const Tensor& x, int64_t chunks, int dim);

// The shape two shapes broadcast to (NumPy rules); aborts if incompatible.
Dims BroadcastShapes(DimsRef a, DimsRef b);
// Sums g over broadcast dims so that it has `sizes` (the backward of Expand).
Tensor SumToShape(const Tensor& g, DimsRef sizes);

}  // namespace loom

#endif  // LOOM_RUNTIME_OPS_SHAPE_H_
