#include "runtime/ops/rope.h"

#include <cmath>
#include <vector>

#include "runtime/autograd/function.h"
#include "runtime/backend.h"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

using autograd::BackwardContext;
using autograd::RecordFunction;
using Grads = std::vector<Tensor>;

}  // namespace

Tensor RopeInvFreq(int64_t head_dim, double theta, DType dtype) {
  LOOM_CHECK(head_dim > 0 && head_dim % 2 == 0,
             "RopeInvFreq: head_dim must be even and > 0, got %d", head_dim);
  LOOM_CHECK(theta > 0, "RopeInvFreq: theta must be > 0, got %g", theta);
  LOOM_CHECK(IsFloating(dtype), "RopeInvFreq: dtype must be floating, got %s",
             std::string(DTypeName(dtype)));
  std::vector<double> inv_freq(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    if (dtype == DType::kF64) {
      inv_freq[i] = 1.0 / std::pow(theta, double(2 * i) / double(head_dim));
    } else {
      // HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in f32.
      const float exponent = float(2 * i) / float(head_dim);
      inv_freq[i] = 1.0f / std::pow(float(theta), exponent);
    }
  }
  return Tensor::FromDoubles(inv_freq, {head_dim / 2}, dtype);
}

Tensor ApplyRope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq) {
  LOOM_CHECK(IsFloating(x.dtype()) && x.dim() == 4 && x.size(3) % 2 == 0,
             "ApplyRope: x must be a floating [B, T, H, E] with E even, got %s %s",
             std::string(DTypeName(x.dtype())), x.ShapeString());
  LOOM_CHECK(positions.dtype() == DType::kI64 && positions.dim() == 2 &&
                 (positions.size(0) == x.size(0) || positions.size(0) == 1) &&
                 positions.size(1) == x.size(1),
             "ApplyRope: positions must be i64 [%d, %d] (or [1, %d]) for x %s, got %s %s",
             x.size(0), x.size(1), x.size(1), x.ShapeString(),
             std::string(DTypeName(positions.dtype())), positions.ShapeString());
  LOOM_CHECK(
      IsFloating(inv_freq.dtype()) && inv_freq.dim() == 1 && inv_freq.size(0) == x.size(3) / 2,
      "ApplyRope: inv_freq must be a floating [%d] for x %s, got %s %s", x.size(3) / 2,
      x.ShapeString(), std::string(DTypeName(inv_freq.dtype())), inv_freq.ShapeString());
  LOOM_CHECK(positions.device() == x.device() && inv_freq.device() == x.device(),
             "ApplyRope: x on %s, positions on %s, inv_freq on %s", x.device().ToString(),
             positions.device().ToString(), inv_freq.device().ToString());
  const DType freq_dtype = x.dtype() == DType::kF64 ? DType::kF64 : DType::kF32;
  Tensor freq = Contiguous(Cast(inv_freq.Detach(), freq_dtype));
  Tensor pos = Contiguous(Expand(positions, {x.size(0), x.size(1)}));
  Tensor out = Tensor::Empty(x.sizes(), x.dtype(), x.device());
  GetBackend(x.device()).Rope(Contiguous(x.Detach()), pos, freq, /*inverse=*/false, out);
  if (autograd::NeedsGrad({&x})) {
    // The rotation is orthogonal: its transpose is the rotation by -angle.
    RecordFunction("RopeBackward", {x}, {out},
                   [pos, freq, dtype = x.dtype()](BackwardContext&, Grads g) -> Grads {
                     Tensor gy = Contiguous(Cast(g[0], dtype));
                     Tensor gx = Tensor::Empty(gy.sizes(), dtype, gy.device());
                     GetBackend(gy.device()).Rope(gy, pos, freq, /*inverse=*/true, gx);
                     return {gx};
                   });
  }
  return out;
}

}  // namespace loom
