#include "runtime/ops/reduce.h"

#include <algorithm>

#include "runtime/autograd/function.h"
#include "runtime/backend.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

using autograd::BackwardContext;
using autograd::RecordFunction;
using Grads = std::vector<Tensor>;

struct ReducePlan {
  std::vector<bool> reduce_dim;
  Dims keep_shape;  // x's rank, 1 on reduced dims
  Dims out_shape;   // without reduced dims unless keepdim
};

ReducePlan Plan(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  ReducePlan p;
  p.reduce_dim.assign(x.dim(), dims.empty());
  for (int d : dims) p.reduce_dim[x.WrapDim(d)] = true;
  for (int d = 0; d < x.dim(); ++d) {
    p.keep_shape.push_back(p.reduce_dim[d] ? 1 : x.size(d));
    if (!p.reduce_dim[d] || keepdim) p.out_shape.push_back(p.reduce_dim[d] ? 1 : x.size(d));
  }
  return p;
}

Tensor ReduceKernel(ReduceOp op, const Tensor& x, const ReducePlan& p) {
  Tensor out = Tensor::Empty(p.keep_shape, x.dtype(), x.device());
  GetBackend(x.device()).Reduce(op, x, p.reduce_dim, out);
  return out;
}

Tensor Extremum(ReduceOp op, const char* name, const Tensor& x, std::vector<int> dims, bool keepdim) {
  const ReducePlan p = Plan(x, dims, keepdim);
  Tensor kept = ReduceKernel(op, x, p);
  Tensor out = kept.Detach();
  out = Reshape(out, p.out_shape);
  if (autograd::NeedsGrad({&x})) {
    RecordFunction(name, {x}, {out}, [x, kept, p](BackwardContext&, Grads g) -> Grads {
      // Share the gradient among the elements equal to the extremum.
      Tensor mask = Eq(x, kept);
      Tensor count = Tensor::Empty(p.keep_shape, x.dtype(), x.device());
      GetBackend(x.device()).Reduce(ReduceOp::kSum, mask, p.reduce_dim, count);
      return {Mul(mask, Div(Reshape(g[0], p.keep_shape), count))};
    });
  }
  return out;
}

}  // namespace

Tensor Sum(const Tensor& x, std::vector<int> dims, bool keepdim) {
  const ReducePlan p = Plan(x, dims, keepdim);
  Tensor out = Reshape(ReduceKernel(ReduceOp::kSum, x, p), p.out_shape).Detach();
  RecordFunction("SumBackward", {x}, {out}, [in = x.sizes(), p](BackwardContext&, Grads g) -> Grads {
    return {Contiguous(Expand(Reshape(g[0], p.keep_shape), in))};
  });
  return out;
}

Tensor Mean(const Tensor& x, std::vector<int> dims, bool keepdim) {
  const ReducePlan p = Plan(x, dims, keepdim);
  const int64_t n = x.numel() / std::max<int64_t>(1, NumElements(p.keep_shape));
  Tensor out = Reshape(ReduceKernel(ReduceOp::kMean, x, p), p.out_shape).Detach();
  RecordFunction("MeanBackward", {x}, {out},
                 [in = x.sizes(), p, n](BackwardContext&, Grads g) -> Grads {
                   return {Contiguous(Expand(MulScalar(Reshape(g[0], p.keep_shape), 1.0 / double(n)), in))};
                 });
  return out;
}

Tensor Max(const Tensor& x, std::vector<int> dims, bool keepdim) {
  return Extremum(ReduceOp::kMax, "MaxBackward", x, std::move(dims), keepdim);
}

Tensor Min(const Tensor& x, std::vector<int> dims, bool keepdim) {
  return Extremum(ReduceOp::kMin, "MinBackward", x, std::move(dims), keepdim);
}

double SumOfSquares(const Tensor& x) {
  Tensor out = Tensor::Empty(Dims(x.dim(), 1), DType::kF64, x.device());
  GetBackend(x.device()).Reduce(ReduceOp::kSumSquares, x, std::vector<bool>(x.dim(), true), out);
  return out.item();
}

}  // namespace loom
