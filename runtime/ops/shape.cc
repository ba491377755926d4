#include "runtime/ops/shape.h"

#include <numeric>

#include "runtime/autograd/function.h"
#include "runtime/backend.h"
#include "runtime/ops/reduce.h"

namespace loom {
namespace {

using autograd::BackwardContext;
using autograd::RecordFunction;

Tensor MakeView(const Tensor& x, DimsRef sizes, DimsRef strides, int64_t offset) {
  return Tensor::FromStorage(x.storage(), offset, sizes, strides, x.dtype());
}

// Strides that view x's data with `sizes`, if the data layout allows it
// (the algorithm of numpy's attempt_nocopy_reshape), else nullopt.
std::optional<Dims> ViewStrides(const Tensor& x, DimsRef sizes) {
  if (x.is_contiguous()) return ContiguousStrides(sizes);
  // Size-1 dims of x may have any stride and constrain nothing: drop them
  // (else e.g. Select of a transposed tensor would copy instead of view).
  Dims os, ost;
  for (int d = 0; d < x.dim(); ++d) {
    if (x.size(d) == 1) continue;
    os.push_back(x.size(d));
    ost.push_back(x.stride(d));
  }
  Dims out(sizes.size());
  size_t oi = 0, ni = 0;
  const size_t on = os.size(), nn = sizes.size();
  while (oi < on && ni < nn) {
    int64_t np = sizes[ni], op = os[oi];
    size_t oj = oi + 1, nj = ni + 1;
    while (np != op) {
      if (np < op) {
        np *= sizes[nj++];
      } else {
        op *= os[oj++];
      }
    }
    for (size_t k = oi; k + 1 < oj; ++k) {
      if (ost[k] != ost[k + 1] * os[k + 1]) return std::nullopt;
    }
    out[nj - 1] = ost[oj - 1];
    for (size_t k = nj - 1; k > ni; --k) out[k - 1] = out[k] * sizes[k];
    ni = nj;
    oi = oj;
  }
  for (; ni < nn; ++ni) out[ni] = 1;  // trailing size-1 dims
  return out;
}

}  // namespace

Tensor Reshape(const Tensor& x, DimsRef requested) {
  Dims sizes(requested.begin(), requested.end());
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == -1) {
      LOOM_CHECK(infer < 0, "Reshape: more than one -1 in %s", DimsString(requested));
      infer = int(i);
    } else {
      known *= sizes[i];
    }
  }
  if (infer >= 0) {
    LOOM_CHECK(known > 0 && x.numel() % known == 0, "Reshape: cannot view %s as %s",
               x.ShapeString(), DimsString(requested));
    sizes[infer] = x.numel() / known;
  }
  LOOM_CHECK(NumElements(sizes) == x.numel(), "Reshape: %s (%d elements) as %s", x.ShapeString(),
             x.numel(), DimsString(sizes));
  Tensor out;
  if (x.numel() == 0) {
    out = Tensor::Empty(sizes, x.dtype(), x.device());
  } else if (std::optional<Dims> strides = ViewStrides(x, sizes)) {
    out = MakeView(x, sizes, *strides, x.offset());
  } else {
    Tensor c = Tensor::Empty(x.sizes(), x.dtype(), x.device());
    GetBackend(x.device()).Copy(x, c);
    out = MakeView(c, sizes, ContiguousStrides(sizes), 0);
  }
  RecordFunction("ReshapeBackward", {x}, {out},
                 [in = x.sizes()](BackwardContext&, std::vector<Tensor> g) -> std::vector<Tensor> {
                   return {Reshape(g[0], in)};
                 });
  return out;
}

Tensor Flatten(const Tensor& x, int start_dim, int end_dim) {
  if (x.dim() == 0) return Reshape(x, {1});
  const int s = x.WrapDim(start_dim), e = x.WrapDim(end_dim);
  Dims sizes;
  for (int i = 0; i < s; ++i) sizes.push_back(x.size(i));
  int64_t m = 1;
  for (int i = s; i <= e; ++i) m *= x.size(i);
  sizes.push_back(m);
  for (int i = e + 1; i < x.dim(); ++i) sizes.push_back(x.size(i));
  return Reshape(x, sizes);
}

Tensor Permute(const Tensor& x, absl::Span<const int> perm) {
  LOOM_CHECK(int(perm.size()) == x.dim(), "Permute: %d dims for a %d-d tensor", perm.size(), x.dim());
  Dims sizes(x.dim()), strides(x.dim());
  std::vector<int> inverse(x.dim(), -1);
  for (int i = 0; i < x.dim(); ++i) {
    const int p = x.WrapDim(perm[i]);
    LOOM_CHECK(inverse[p] < 0, "Permute: dim %d repeated", p);
    inverse[p] = i;
    sizes[i] = x.size(p);
    strides[i] = x.stride(p);
  }
  Tensor out = MakeView(x, sizes, strides, x.offset());
  RecordFunction("PermuteBackward", {x}, {out},
                 [inverse](BackwardContext&, std::vector<Tensor> g) -> std::vector<Tensor> {
                   return {Permute(g[0], inverse)};
                 });
  return out;
}

Tensor Transpose(const Tensor& x, int dim0, int dim1) {
  std::vector<int> perm(x.dim());
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[x.WrapDim(dim0)], perm[x.WrapDim(dim1)]);
  return Permute(x, perm);
}

Tensor Slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step) {
  const int d = x.WrapDim(dim);
  const int64_t n = x.size(d);
  LOOM_CHECK(step > 0, "Slice: step must be positive, got %d", step);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Dims sizes = x.sizes(), strides = x.strides();
  sizes[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  Tensor out = MakeView(x, sizes, strides, x.offset() + start * x.stride(d));
  RecordFunction("SliceBackward", {x}, {out},
                 [in = x.sizes(), d, start, end, step](BackwardContext&,
                                                       std::vector<Tensor> g) -> std::vector<Tensor> {
                   Tensor gx = Tensor::Zeros(in, g[0].dtype(), g[0].device());
                   Tensor region = Slice(gx, d, start, end, step);
                   GetBackend(gx.device()).Copy(g[0], region);
                   return {gx};
                 });
  return out;
}

Tensor Select(const Tensor& x, int dim, int64_t index) {
  const int d = x.WrapDim(dim);
  if (index < 0) index += x.size(d);
  LOOM_CHECK(index >= 0 && index < x.size(d), "Select: index %d out of range for dim %d of %s",
             index, d, x.ShapeString());
  return Squeeze(Slice(x, d, index, index + 1), d);
}

Tensor Expand(const Tensor& x, DimsRef target) {
  const int nd = int(target.size());
  LOOM_CHECK(nd >= x.dim(), "Expand: %s to fewer dims %s", x.ShapeString(), DimsString(target));
  Dims sizes(nd), strides(nd);
  const int lead = nd - x.dim();
  for (int i = 0; i < nd; ++i) {
    const int64_t t = target[i];
    if (i < lead) {
      LOOM_CHECK(t >= 0, "Expand: new leading dim %d needs a size, got %d", i, t);
      sizes[i] = t;
      strides[i] = 0;
      continue;
    }
    const int64_t s = x.size(i - lead);
    if (t == -1 || t == s) {
      sizes[i] = s;
      strides[i] = x.stride(i - lead);
    } else {
      LOOM_CHECK(s == 1, "Expand: cannot expand %s to %s (dim %d has size %d)", x.ShapeString(),
                 DimsString(target), i, s);
      sizes[i] = t;
      strides[i] = 0;
    }
  }
  if (sizes == x.sizes()) return x;
  Tensor out = MakeView(x, sizes, strides, x.offset());
  RecordFunction("ExpandBackward", {x}, {out},
                 [in = x.sizes()](BackwardContext&, std::vector<Tensor> g) -> std::vector<Tensor> {
                   return {SumToShape(g[0], in)};
                 });
  return out;
}

Tensor Unsqueeze(const Tensor& x, int dim) {
  const int d = dim < 0 ? dim + x.dim() + 1 : dim;
  LOOM_CHECK(d >= 0 && d <= x.dim(), "Unsqueeze: dim %d for a %d-d tensor", dim, x.dim());
  Dims sizes = x.sizes();
  sizes.insert(sizes.begin() + d, 1);
  return Reshape(x, sizes);
}

Tensor Squeeze(const Tensor& x, int dim) {
  const int d = x.WrapDim(dim);
  LOOM_CHECK(x.size(d) == 1, "Squeeze: dim %d of %s is not 1", d, x.ShapeString());
  Dims sizes = x.sizes();
  sizes.erase(sizes.begin() + d);
  return Reshape(x, sizes);
}

Tensor Contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  return Clone(x);
}

Tensor Clone(const Tensor& x) {
  Tensor out = Tensor::Empty(x.sizes(), x.dtype(), x.device());
  GetBackend(x.device()).Copy(x, out);
  RecordFunction("CloneBackward", {x}, {out},
                 [](BackwardContext&, std::vector<Tensor> g) -> std::vector<Tensor> { return {g[0]}; });
  return out;
}

Tensor Cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = Tensor::Empty(x.sizes(), dtype, x.device());
  GetBackend(x.device()).Copy(x, out);
  if (IsFloating(dtype)) {
    RecordFunction("CastBackward", {x}, {out},
                   [from = x.dtype()](BackwardContext&, std::vector<Tensor> g) -> std::vector<Tensor> {
                     return {Cast(g[0], from)};
                   });
  }
  return out;
}

Tensor Cat(const std::vector<Tensor>& xs, int dim) {
  LOOM_CHECK(!xs.empty(), "Cat of no tensors");
  const Tensor& first = xs[0];
  const int d = first.WrapDim(dim);
  Dims sizes = first.sizes();
  sizes[d] = 0;
  Dims pieces;
  for (const Tensor& x : xs) {
    LOOM_CHECK(x.dim() == first.dim() && x.dtype() == first.dtype() && x.device() == first.device(),
               "Cat: %s %s vs %s %s", x.ShapeString(), std::string(DTypeName(x.dtype())),
               first.ShapeString(), std::string(DTypeName(first.dtype())));
    for (int i = 0; i < x.dim(); ++i) {
      LOOM_CHECK(i == d || x.size(i) == first.size(i), "Cat along %d: %s vs %s", d, x.ShapeString(),
                 first.ShapeString());
    }
    sizes[d] += x.size(d);
    pieces.push_back(x.size(d));
  }
  Tensor out = Tensor::Empty(sizes, first.dtype(), first.device());
  int64_t at = 0;
  Backend& backend = GetBackend(first.device());
  for (const Tensor& x : xs) {
    if (x.numel() > 0) backend.Copy(x, Slice(out.Detach(), d, at, at + x.size(d)));
    at += x.size(d);
  }
  RecordFunction("CatBackward", xs, {out},
                 [pieces, d](BackwardContext&, std::vector<Tensor> g) -> std::vector<Tensor> {
                   std::vector<Tensor> parts = Split(g[0], pieces, d);
                   return parts;
                 });
  return out;
}

std::vector<Tensor> Split(const Tensor& x, DimsRef sizes, int dim) {
  const int d = x.WrapDim(dim);
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  LOOM_CHECK(total == x.size(d), "Split: sizes %s do not add up to dim %d of %s", DimsString(sizes),
             d, x.ShapeString());
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(Slice(x, d, at, at + s));
    at += s;
  }
  return out;
}

std::vector<Tensor> Chunk(const Tensor& x, int64_t chunks, int dim) {
  const int d = x.WrapDim(dim);
  LOOM_CHECK(chunks > 0, "Chunk: %d chunks", chunks);
  const int64_t per = (x.size(d) + chunks - 1) / chunks;
  Dims sizes;
  for (int64_t at = 0; at < x.size(d); at += per) sizes.push_back(std::min(per, x.size(d) - at));
  return Split(x, sizes, d);
}

Dims BroadcastShapes(DimsRef a, DimsRef b) {
  const size_t n = std::max(a.size(), b.size());
  Dims out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
    LOOM_CHECK(x == y || x == 1 || y == 1, "shapes %s and %s do not broadcast", DimsString(a),
               DimsString(b));
    out[i] = x == 1 ? y : x;
  }
  return out;
}

Tensor SumToShape(const Tensor& g, DimsRef sizes) {
  if (DimsRef(g.sizes()) == sizes) return g;
  const int lead = g.dim() - int(sizes.size());
  LOOM_CHECK(lead >= 0, "SumToShape: %s to %s", g.ShapeString(), DimsString(sizes));
  std::vector<int> dims;
  for (int i = 0; i < g.dim(); ++i) {
    if (i < lead || (sizes[i - lead] == 1 && g.size(i) != 1)) dims.push_back(i);
  }
  Tensor s = dims.empty() ? g : Sum(g, dims, /*keepdim=*/true);
  return Reshape(s, sizes);
}

}  // namespace loom
