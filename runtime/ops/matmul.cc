#include "runtime/ops/matmul.h"

#include <optional>
#include <utility>

#include "runtime/autograd/function.h"
#include "runtime/backend.h"
#include "runtime/ops/reduce.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

using autograd::BackwardContext;
using autograd::RecordFunction;
using Grads = std::vector<Tensor>;

Tensor View(const Tensor& x, DimsRef sizes, DimsRef strides) {
  return Tensor::FromStorage(x.storage(), x.offset(), sizes, strides, x.dtype());
}

// An operand as Backend::Gemm takes it: stored [batch, rows, cols] with
// stride 1 on the last dim, and whether Gemm must transpose it.
struct GemmOperand {
  Tensor stored;
  bool trans = false;
};

// x3 is a logical [batch, R, C] view without autograd history. A view whose
// C dim has stride 1 passes as is; one whose R dim has stride 1 (a transposed
// matrix) passes as its transpose with the trans flag; anything else is copied.
GemmOperand AsGemmOperand(const Tensor& x3) {
  const int64_t nb = x3.size(0), r = x3.size(1), c = x3.size(2);
  const int64_t bs = nb == 1 ? 0 : x3.stride(0);
  // Strides of size-1 dims carry no information: canonicalize them.
  const int64_t sr = r <= 1 ? c : x3.stride(1), sc = c <= 1 ? 1 : x3.stride(2);
  if (sc == 1 && (r <= 1 || sr >= c)) return {View(x3, {nb, r, c}, {bs, sr, 1}), false};
  const int64_t tr = r <= 1 ? 1 : x3.stride(1), tc = c <= 1 ? r : x3.stride(2);
  if (tr == 1 && (c <= 1 || tc >= r)) return {View(x3, {nb, c, r}, {bs, tc, 1}), true};
  return {Contiguous(x3), false};
}

// The single (size, stride) that dims [begin, end) of x collapse to, if they
// form one strided run (size-1 dims are ignored).
std::optional<std::pair<int64_t, int64_t>> CollapseDims(const Tensor& x, int begin, int end) {
  int64_t numel = 1, stride = 0;
  bool have = false;
  for (int d = end - 1; d >= begin; --d) {
    if (x.size(d) == 1) continue;
    if (!have) {
      stride = x.stride(d);
      have = true;
    } else if (x.stride(d) != stride * numel) {
      return std::nullopt;
    }
    numel *= x.size(d);
  }
  return std::make_pair(numel, stride);
}

// x [..., R, C] (no history) as [nb, R, C] for a product over `batch`:
// shared ([1, R, C]) when x has a single matrix, else broadcast to `batch`
// and viewed with one batch stride (copied when its batch dims do not collapse).
Tensor BatchView(const Tensor& x, DimsRef batch) {
  const int64_t r = x.size(-2), c = x.size(-1);
  Dims x_batch(x.sizes().begin(), x.sizes().end() - 2);
  if (NumElements(x_batch) == 1) return View(x, {1, r, c}, {0, x.stride(-2), x.stride(-1)});
  Dims full(batch.begin(), batch.end());
  full.push_back(r);
  full.push_back(c);
  Tensor e = Expand(x, full);
  const int eb = e.dim() - 2;
  if (auto run = CollapseDims(e, 0, eb)) {
    return View(e, {run->first, r, c}, {run->second, e.stride(-2), e.stride(-1)});
  }
  Tensor copy = Contiguous(e);
  return View(copy, {NumElements(batch), r, c}, {r * c, c, 1});
}

void RunGemm(const Tensor& a3, const Tensor& b3, double beta, const Tensor& out3) {
  const GemmOperand oa = AsGemmOperand(a3), ob = AsGemmOperand(b3);
  GetBackend(out3.device()).Gemm(oa.stored, oa.trans, ob.stored, ob.trans, 1.0, beta, out3);
}

// out (fresh, contiguous [batch..., M, N]) = a @ b; a and b have no history.
void MatMulInto(const Tensor& a, const Tensor& b, DimsRef batch, const Tensor& out) {
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  const int64_t nb = NumElements(batch);
  const int64_t a_nb = NumElements(DimsRef(a.sizes()).subspan(0, a.dim() - 2));
  const int64_t b_nb = NumElements(DimsRef(b.sizes()).subspan(0, b.dim() - 2));
  // A shared b and a batched a whose batch and row dims collapse: one GEMM over nb * M rows.
  if (nb > 1 && b_nb == 1 && a_nb == nb) {
    if (auto rows = CollapseDims(a, 0, a.dim() - 1); rows && (k <= 1 || a.stride(-1) == 1)) {
      RunGemm(View(a, {1, nb * m, k}, {0, rows->second, a.stride(-1)}), BatchView(b, batch), 0.0,
              View(out, {1, nb * m, n}, {0, n, 1}));
      return;
    }
  }
  RunGemm(BatchView(a, batch), BatchView(b, batch), 0.0, View(out, {nb, m, n}, {m * n, n, 1}));
}

void CheckSameDtypeDevice(const char* op, const char* what, const Tensor& x, const Tensor& y) {
  LOOM_CHECK(x.dtype() == y.dtype(), "%s: %s dtypes differ (%s vs %s); Cast one first", op, what,
             std::string(DTypeName(x.dtype())), std::string(DTypeName(y.dtype())));
  LOOM_CHECK(x.device() == y.device(), "%s: %s devices differ (%s vs %s)", op, what,
             x.device().ToString(), y.device().ToString());
}

}  // namespace

Tensor MatMul(const Tensor& a, const Tensor& b) {
  LOOM_CHECK(a.dim() >= 2 && b.dim() >= 2,
             "MatMul: a %s and b %s need >= 2 dims each (1-d operands are not supported; "
             "Unsqueeze them to matrices)",
             a.ShapeString(), b.ShapeString());
  CheckSameDtypeDevice("MatMul", "operand", a, b);
  LOOM_CHECK(IsFloating(a.dtype()), "MatMul: expected floating tensors, got %s",
             std::string(DTypeName(a.dtype())));
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  LOOM_CHECK(b.size(-2) == k, "MatMul: a %s @ b %s: inner dims differ (%d vs %d)", a.ShapeString(),
             b.ShapeString(), k, b.size(-2));
  const Dims a_batch(a.sizes().begin(), a.sizes().end() - 2);
  const Dims b_batch(b.sizes().begin(), b.sizes().end() - 2);
  const Dims batch = BroadcastShapes(a_batch, b_batch);
  Dims out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = Tensor::Empty(out_shape, a.dtype(), a.device());
  if (out.numel() > 0) MatMulInto(a.Detach(), b.Detach(), batch, out);
  if (autograd::NeedsGrad({&a, &b})) {
    RecordFunction("MatMulBackward", {a, b}, {out}, [a, b](BackwardContext& ctx, Grads g) -> Grads {
      const Tensor& gy = g[0];
      Tensor ga, gb;
      if (ctx.needs_input_grad(0)) ga = SumToShape(MatMul(gy, Transpose(b, -1, -2)), a.sizes());
      if (ctx.needs_input_grad(1)) {
        const int64_t b_nb = NumElements(DimsRef(b.sizes()).subspan(0, b.dim() - 2));
        if (b_nb == 1 && a.dim() > 2) {
          // b shared by every batch: sum over all rows of a and g in one GEMM.
          const int64_t k = a.size(-1), n = b.size(-1);
          const int64_t rows = NumElements(DimsRef(a.sizes()).subspan(0, a.dim() - 1));
          gb = Reshape(MatMul(Transpose(Reshape(a, {rows, k}), 0, 1), Reshape(gy, {rows, n})),
                       b.sizes());
        } else {
          gb = SumToShape(MatMul(Transpose(a, -1, -2), gy), b.sizes());
        }
      }
      return {ga, gb};
    });
  }
  return out;
}

Tensor Linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  LOOM_CHECK(x.dim() >= 1 && weight.dim() == 2 && x.size(-1) == weight.size(1),
             "Linear: x %s with weight %s; expected x [..., in] and weight [out, in]",
             x.ShapeString(), weight.ShapeString());
  CheckSameDtypeDevice("Linear", "x and weight", x, weight);
  LOOM_CHECK(IsFloating(x.dtype()), "Linear: expected floating tensors, got %s",
             std::string(DTypeName(x.dtype())));
  const int64_t in = weight.size(1), out_features = weight.size(0);
  if (bias.defined()) {
    LOOM_CHECK(bias.dim() == 1 && bias.size(0) == out_features,
               "Linear: bias %s for weight %s; expected [%d]", bias.ShapeString(),
               weight.ShapeString(), out_features);
    CheckSameDtypeDevice("Linear", "x and bias", x, bias);
  }
  const int64_t rows = NumElements(DimsRef(x.sizes()).subspan(0, x.dim() - 1));
  Dims out_shape = x.sizes();
  out_shape.back() = out_features;
  Tensor y = Tensor::Empty(out_shape, x.dtype(), x.device());
  if (y.numel() > 0) {
    const Tensor x2 = Reshape(x.Detach(), {rows, in});
    const Tensor y3 = View(y, {1, rows, out_features}, {0, out_features, 1});
    double beta = 0.0;
    if (bias.defined()) {  // y starts as the broadcast bias; the GEMM accumulates onto it
      GetBackend(y.device())
          .Copy(Expand(bias.Detach(), {rows, out_features}), Reshape(y, {rows, out_features}));
      beta = 1.0;
    }
    RunGemm(View(x2, {1, rows, in}, {0, x2.stride(0), x2.stride(1)}),
            View(weight, {1, in, out_features}, {0, weight.stride(1), weight.stride(0)}), beta, y3);
  }
  if (autograd::NeedsGrad({&x, &weight, &bias})) {
    RecordFunction(
        "LinearBackward", {x, weight, bias}, {y},
        [x, weight, rows, has_bias = bias.defined()](BackwardContext& ctx, Grads g) -> Grads {
          const int64_t in = weight.size(1), out_features = weight.size(0);
          const Tensor g2 = Reshape(g[0], {rows, out_features});
          Tensor gx, gw, gb;
          if (ctx.needs_input_grad(0)) gx = Reshape(MatMul(g2, weight), x.sizes());
          if (ctx.needs_input_grad(1)) {
            gw = MatMul(Transpose(g2, 0, 1), Reshape(x, {rows, in}));
          }
          if (has_bias && ctx.needs_input_grad(2)) gb = Sum(g2, {0});
          return {gx, gw, gb};
        });
  }
  return y;
}

}  // namespace loom
