// Op-harness cases for reductions (see runtime/testing/op_harness.h). The
// reference visits every input element and folds it into its output slot.
#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/ops/ops.h"
#include "runtime/testing/op_harness.h"

namespace loom::testing {
namespace {

enum class Kind { kSum, kMean, kMax, kMin };

// Reference reduction of x over `dims` (empty: all).
RefArray RefReduce(const RefArray& x, Kind kind, std::vector<int> dims, bool keepdim) {
  const int nd = int(x.sizes.size());
  std::vector<bool> reduced(nd, dims.empty());
  for (int d : dims) reduced[d < 0 ? d + nd : d] = true;
  Dims kept_sizes, out_sizes;
  for (int d = 0; d < nd; ++d) {
    kept_sizes.push_back(reduced[d] ? 1 : x.sizes[d]);
    if (!reduced[d] || keepdim) out_sizes.push_back(reduced[d] ? 1 : x.sizes[d]);
  }
  RefArray out(out_sizes);
  const double init = kind == Kind::kMax   ? -std::numeric_limits<double>::infinity()
                      : kind == Kind::kMin ? std::numeric_limits<double>::infinity()
                                           : 0.0;
  std::fill(out.v.begin(), out.v.end(), init);
  std::vector<int64_t> count(out.v.size(), 0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    // Row-major index of i, then its output slot (reduced dims at 0).
    int64_t rem = i, slot = 0, stride = 1;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t idx = rem % x.sizes[d];
      rem /= x.sizes[d];
      if (!reduced[d]) slot += idx * stride;
      stride *= kept_sizes[d];
    }
    double& o = out.v[slot];
    const double v = x.v[i];
    switch (kind) {
      case Kind::kSum:
      case Kind::kMean:
        o += v;
        break;
      case Kind::kMax:
        o = std::max(o, v);
        break;
      case Kind::kMin:
        o = std::min(o, v);
        break;
    }
    ++count[slot];
  }
  if (kind == Kind::kMean) {
    for (size_t s = 0; s < out.v.size(); ++s) out.v[s] /= double(count[s]);
  }
  return out;
}

Tensor Apply(Kind kind, const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  switch (kind) {
    case Kind::kSum:
      return Sum(x, dims, keepdim);
    case Kind::kMean:
      return Mean(x, dims, keepdim);
    case Kind::kMax:
      return Max(x, dims, keepdim);
    case Kind::kMin:
      return Min(x, dims, keepdim);
  }
  return Tensor();
}

OpCase ReduceCase(std::string name, Kind kind, Dims shape, std::vector<int> dims, bool keepdim,
                  bool check_grad = true) {
  OpCase c{.name = "reduce/" + name,
           .make_inputs = [shape](DType dt) { return Inputs{RandomNormal(shape, dt, 40)}; },
           .op = [kind, dims,
                  keepdim](const Inputs& in) { return Outputs{Apply(kind, in[0], dims, keepdim)}; },
           .reference =
               [kind, dims, keepdim](const RefInputs& in) {
                 return RefOutputs{RefReduce(in[0], kind, dims, keepdim)};
               }};
  if (check_grad) c.grad_inputs = {0};
  return c;
}

// Values with two-way ties at every extremum: row maxima 5, 3 and 4, global
// minimum -2. Central differences at a two-way tie give 1/2 per element,
// which is the even split the ops promise.
Tensor TiedValues(DType dt) {
  return Tensor::FromDoubles({1, 5, 5, 2, 3, 3, 1, 0, -2, 4, -2, 4}, {3, 4}, dt);
}

LOOM_REGISTER_OP_CASES(ReduceCases) {
  std::vector<OpCase> cases = {
      ReduceCase("sum_all", Kind::kSum, {3, 4, 5}, {}, false),
      ReduceCase("sum_all_keepdim", Kind::kSum, {3, 4, 5}, {}, true),
      ReduceCase("sum_dim1", Kind::kSum, {3, 4, 5}, {1}, false),
      ReduceCase("sum_dims_0_2_keepdim", Kind::kSum, {3, 4, 5}, {0, 2}, true),
      ReduceCase("sum_scalar", Kind::kSum, {}, {}, false),
      ReduceCase("sum_empty_dim", Kind::kSum, {0, 3}, {0}, false),
      ReduceCase("mean_all", Kind::kMean, {4, 6}, {}, false),
      ReduceCase("mean_last_keepdim", Kind::kMean, {3, 4, 5}, {-1}, true),
      ReduceCase("mean_dims_0_2", Kind::kMean, {3, 4, 5}, {0, 2}, false),
      ReduceCase("max_all", Kind::kMax, {3, 4, 5}, {}, false),
      ReduceCase("max_dim0_keepdim", Kind::kMax, {3, 4, 5}, {0}, true),
      ReduceCase("max_dims_0_2", Kind::kMax, {3, 4, 5}, {2, 0}, false),
      ReduceCase("min_all_keepdim", Kind::kMin, {3, 4, 5}, {}, true),
      ReduceCase("min_dim1", Kind::kMin, {3, 4, 5}, {1}, false),
      ReduceCase("min_dims_0_2_keepdim", Kind::kMin, {3, 4, 5}, {0, -1}, true),
      // More than one internal block (8192) per output: covers block combining.
      ReduceCase("sum_large", Kind::kSum, {70000}, {}, false, /*check_grad=*/false),
      ReduceCase("mean_large_strided", Kind::kMean, {17000, 3}, {0}, true, false),
      ReduceCase("max_large", Kind::kMax, {2, 40000}, {1}, false, false),
      ReduceCase("min_large_two_dims", Kind::kMin, {300, 3, 100}, {0, 2}, false, false),
  };
  for (Kind kind : {Kind::kMax, Kind::kMin}) {
    const bool is_max = kind == Kind::kMax;
    const std::vector<int> dims = is_max ? std::vector<int>{1} : std::vector<int>{};
    cases.push_back(
        {.name = is_max ? "reduce/max_ties_dim1" : "reduce/min_ties_all",
         .make_inputs = [](DType dt) { return Inputs{TiedValues(dt)}; },
         .grad_inputs = {0},
         .op = [kind, dims](const Inputs& in) { return Outputs{Apply(kind, in[0], dims, false)}; },
         .reference =
             [kind, dims](const RefInputs& in) {
               return RefOutputs{RefReduce(in[0], kind, dims, false)};
             }});
  }
  // A three-way tie made of stride-0 copies of one element: each copy gets
  // 1/3 and the expand sums them back to 1 (what finite differences see).
  cases.push_back({.name = "reduce/max_three_way_tie_of_expanded",
                   .make_inputs =
                       [](DType dt) {
                         return Inputs{RandomNormal({1, 4}, dt, 42)};
                       },
                   .grad_inputs = {0},
                   .op =
                       [](const Inputs& in) {
                         return Outputs{Max(Expand(in[0], {3, 4}), {0})};
                       },
                   .reference =
                       [](const RefInputs& in) {
                         return RefOutputs{RefReduce(in[0], Kind::kMax, {0}, false)};
                       }});
  // A strided (transposed) input and a gradient through two reductions.
  cases.push_back(
      {.name = "reduce/sum_of_transposed_then_max",
       .make_inputs =
           [](DType dt) {
             return Inputs{RandomNormal({4, 3, 5}, dt, 41)};
           },
       .grad_inputs = {0},
       .op = [](const Inputs& in) { return Outputs{Max(Sum(Transpose(in[0], 0, 2), {1}), {0})}; },
       .reference =
           [](const RefInputs& in) {
             // t[a][b][c] = x[c][b][a]; s[a][c] = sum_b t; out[c] = max_a s.
             RefArray out({4});
             for (int64_t c = 0; c < 4; ++c) {
               double best = -INFINITY;
               for (int64_t a = 0; a < 5; ++a) {
                 double s = 0;
                 for (int64_t b = 0; b < 3; ++b) s += in[0].at({c, b, a});
                 best = std::max(best, s);
               }
               out.at({c}) = best;
             }
             return RefOutputs{out};
           }});
  // SumOfSquares accumulates in f64 over several blocks, from a strided view.
  cases.push_back({.name = "reduce/sum_of_squares_large_strided",
                   .make_inputs =
                       [](DType dt) {
                         return Inputs{RandomNormal({9000, 3}, dt, 43)};
                       },
                   .op =
                       [](const Inputs& in) {
                         return Outputs{
                             Tensor::Scalar(SumOfSquares(Transpose(in[0], 0, 1)), DType::kF64)};
                       },
                   .reference =
                       [](const RefInputs& in) {
                         RefArray out;  // a 0-d array
                         out.v = {0.0};
                         for (double v : in[0].v) out.v[0] += v * v;
                         return RefOutputs{out};
                       }});
  return cases;
}

}  // namespace
}  // namespace loom::testing
