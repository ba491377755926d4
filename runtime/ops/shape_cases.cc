// Op-harness cases for shape ops (see runtime/testing/op_harness.h). The
// references move elements with explicit index arithmetic.
#include <functional>
#include <numeric>

#include "runtime/ops/ops.h"
#include "runtime/testing/op_harness.h"

namespace loom::testing {
namespace {

Dims Unravel(int64_t linear, const Dims& sizes) {
  Dims idx(sizes.size());
  for (int d = int(sizes.size()) - 1; d >= 0; --d) {
    idx[d] = linear % sizes[d];
    linear /= sizes[d];
  }
  return idx;
}

int64_t Ravel(const Dims& idx, const Dims& sizes) {
  int64_t linear = 0;
  for (size_t d = 0; d < sizes.size(); ++d) linear = linear * sizes[d] + idx[d];
  return linear;
}

// out[i] = x[source(index of i)] for an output of shape `out_sizes`.
RefArray Gather(const RefArray& x, const Dims& out_sizes,
                const std::function<Dims(const Dims&)>& source) {
  RefArray out(out_sizes);
  for (int64_t i = 0; i < out.numel(); ++i) {
    out.v[i] = x.v[Ravel(source(Unravel(i, out_sizes)), x.sizes)];
  }
  return out;
}

// The same values with another shape (row-major order kept).
RefArray WithShape(const RefArray& x, const Dims& sizes) {
  RefArray out = x;
  out.sizes = sizes;
  return out;
}

OpCase OneInput(std::string name, Dims shape, std::function<Tensor(const Tensor&)> op,
                std::function<RefArray(const RefArray&)> ref) {
  return {.name = "shape/" + name,
          .make_inputs = [shape](DType dt) { return Inputs{RandomNormal(shape, dt, 11)}; },
          .grad_inputs = {0},
          .op = [op](const Inputs& in) { return Outputs{op(in[0])}; },
          .reference = [ref](const RefInputs& in) { return RefOutputs{ref(in[0])}; }};
}

// Cat of three inputs along `dim`; each is differentiated.
OpCase CatCase(std::string name, std::vector<Dims> shapes, int dim) {
  return {.name = "shape/" + name,
          .make_inputs =
              [shapes](DType dt) {
                Inputs in;
                for (size_t k = 0; k < shapes.size(); ++k)
                  in.push_back(RandomNormal(shapes[k], dt, 20 + k));
                return in;
              },
          .grad_inputs = {0, 1, 2},
          .op = [dim](const Inputs& in) { return Outputs{Cat(in, dim)}; },
          .reference =
              [dim](const RefInputs& in) {
                Dims sizes = in[0].sizes;
                sizes[dim] = 0;
                for (const RefArray& r : in) sizes[dim] += r.sizes[dim];
                RefArray out(sizes);
                for (int64_t i = 0; i < out.numel(); ++i) {
                  Dims idx = Unravel(i, sizes);
                  size_t k = 0;
                  while (idx[dim] >= in[k].sizes[dim]) idx[dim] -= in[k++].sizes[dim];
                  out.v[i] = in[k].v[Ravel(idx, in[k].sizes)];
                }
                return RefOutputs{out};
              }};
}

// Pieces of x along `dim` with the given sizes.
RefOutputs RefSplit(const RefArray& x, const Dims& pieces, int dim) {
  RefOutputs outs;
  int64_t at = 0;
  for (int64_t p : pieces) {
    Dims sizes = x.sizes;
    sizes[dim] = p;
    outs.push_back(Gather(x, sizes, [at, dim](Dims idx) {
      idx[dim] += at;
      return idx;
    }));
    at += p;
  }
  return outs;
}

LOOM_REGISTER_OP_CASES(ShapeCases) {
  std::vector<OpCase> cases = {
      OneInput(
          "reshape_infer", {2, 3, 4},
          [](const Tensor& x) {
            return Reshape(x, {4, -1});
          },
          [](const RefArray& x) {
            return WithShape(x, {4, 6});
          }),
      OneInput(
          "reshape_of_transpose_copies", {2, 3},
          [](const Tensor& x) { return Reshape(Transpose(x, 0, 1), {6}); },
          [](const RefArray& x) {
            return Gather(x, {6}, [](const Dims& i) { return Dims{i[0] % 2, i[0] / 2}; });
          }),
      OneInput(
          "flatten_middle", {2, 3, 4, 5}, [](const Tensor& x) { return Flatten(x, 1, 2); },
          [](const RefArray& x) {
            return WithShape(x, {2, 12, 5});
          }),
      OneInput(
          "permute", {2, 3, 4},
          [](const Tensor& x) {
            return Permute(x, {2, 0, 1});
          },
          [](const RefArray& x) {
            return Gather(x, {4, 2, 3}, [](const Dims& i) { return Dims{i[1], i[2], i[0]}; });
          }),
      OneInput(
          "transpose_negative_dim", {3, 4, 2}, [](const Tensor& x) { return Transpose(x, -1, 0); },
          [](const RefArray& x) {
            return Gather(x, {2, 4, 3}, [](const Dims& i) { return Dims{i[2], i[1], i[0]}; });
          }),
      // Columns 1, 3, 5 (start -6 of 7, step 2) of rows 2, 3 (start -3, end -1).
      OneInput(
          "slice_negative_start_step2", {5, 7},
          [](const Tensor& x) { return Slice(Slice(x, 1, -6, 7, 2), 0, -3, -1); },
          [](const RefArray& x) {
            return Gather(x, {2, 3}, [](const Dims& i) { return Dims{2 + i[0], 1 + 2 * i[1]}; });
          }),
      OneInput(
          "select_negative_index", {3, 4, 5}, [](const Tensor& x) { return Select(x, 1, -2); },
          [](const RefArray& x) {
            return Gather(x, {3, 5}, [](const Dims& i) { return Dims{i[0], 2, i[1]}; });
          }),
      OneInput(
          "expand_new_leading_dims", {3, 1},
          [](const Tensor& x) {
            return Expand(x, {2, 3, 4});
          },
          [](const RefArray& x) {
            return Gather(x, {2, 3, 4}, [](const Dims& i) { return Dims{i[1], 0}; });
          }),
      OneInput(
          "unsqueeze", {3, 4}, [](const Tensor& x) { return Unsqueeze(x, -2); },
          [](const RefArray& x) {
            return WithShape(x, {3, 1, 4});
          }),
      OneInput(
          "squeeze_of_transpose", {4, 1, 3},
          [](const Tensor& x) { return Squeeze(Transpose(x, 0, 2), 1); },
          [](const RefArray& x) {
            return Gather(x, {3, 4}, [](const Dims& i) { return Dims{i[1], 0, i[0]}; });
          }),
      OneInput(
          "contiguous_of_view", {3, 5},
          [](const Tensor& x) { return Contiguous(Slice(Transpose(x, 0, 1), 0, 1, 5, 2)); },
          [](const RefArray& x) {
            return Gather(x, {2, 3}, [](const Dims& i) { return Dims{i[1], 1 + 2 * i[0]}; });
          }),
      OneInput(
          "clone", {2, 5}, [](const Tensor& x) { return Clone(x); },
          [](const RefArray& x) { return x; }),
      CatCase("cat_dim0", {{2, 3}, {1, 3}, {3, 3}}, 0),
      CatCase("cat_dim1", {{2, 1}, {2, 3}, {2, 2}}, 1),
  };
  // f64 -> f32 -> f64 rounds to float (forward only: the rounding has no
  // useful finite-difference derivative).
  cases.push_back({.name = "shape/cast_f64_f32_f64",
                   .make_inputs =
                       [](DType dt) {
                         return Inputs{RandomNormal({4, 3}, dt, 30)};
                       },
                   .op =
                       [](const Inputs& in) {
                         Tensor y = Cast(Cast(in[0], DType::kF32), DType::kF64);
                         LOOM_CHECK(y.dtype() == DType::kF64, "Cast returned %s",
                                    std::string(DTypeName(y.dtype())));
                         return Outputs{y};
                       },
                   .reference =
                       [](const RefInputs& in) {
                         RefArray out = in[0];
                         for (double& v : out.v) v = double(float(v));
                         return RefOutputs{out};
                       },
                   .f64_tol = 0});
  cases.push_back({.name = "shape/split_dim0",
                   .make_inputs =
                       [](DType dt) {
                         return Inputs{RandomNormal({7, 3}, dt, 31)};
                       },
                   .grad_inputs = {0},
                   .op =
                       [](const Inputs& in) {
                         return Split(in[0], {2, 4, 1}, 0);
                       },
                   .reference =
                       [](const RefInputs& in) {
                         return RefSplit(in[0], {2, 4, 1}, 0);
                       }});
  cases.push_back({.name = "shape/chunk_uneven_dim1",
                   .make_inputs =
                       [](DType dt) {
                         return Inputs{RandomNormal({4, 5}, dt, 32)};
                       },
                   .grad_inputs = {0},
                   .op = [](const Inputs& in) { return Chunk(in[0], 2, -1); },
                   .reference =
                       [](const RefInputs& in) {
                         return RefSplit(in[0], {3, 2}, 1);
                       }});
  // Views of views feeding math: gradients flow back through strided views.
  cases.push_back({.name = "shape/views_into_math",
                   .make_inputs =
                       [](DType dt) {
                         return Inputs{RandomNormal({4, 6}, dt, 33)};
                       },
                   .grad_inputs = {0},
                   .op =
                       [](const Inputs& in) {
                         Tensor a = Slice(in[0], 1, 0, 6, 2);  // [4, 3]
                         Tensor b = Select(in[0], 0, 1);       // [6]
                         return Outputs{Mul(a, Expand(Unsqueeze(Slice(b, 0, 1, 4), 0), {4, 3}))};
                       },
                   .reference =
                       [](const RefInputs& in) {
                         RefArray out({4, 3});
                         for (int64_t i = 0; i < 4; ++i) {
                           for (int64_t j = 0; j < 3; ++j) {
                             out.at({i, j}) = in[0].at({i, 2 * j}) * in[0].at({1, 1 + j});
                           }
                         }
                         return RefOutputs{out};
                       }});
  return cases;
}

}  // namespace
}  // namespace loom::testing
