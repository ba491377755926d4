// CPU AdamW: one fused, elementwise update per parameter tensor.
//
// The arithmetic follows torch.optim.AdamW's single-tensor path op by op, so
// that f32 results are bit-identical to PyTorch 1.13's (AVX2 build; checked on
// 1e5 random elements over two steps): the step scalars are computed in double
// (as Python does) and rounded to the compute type, and each tensor op of the
// reference is one rounding here (its vectorized add_ and addcmul_ use FMA):
//   p = p * (1 - lr*wd)
//   m = fma(g, 1-b1, m*b1)                                 (add_ with alpha)
//   v = fma((1-b2)*g, g, v*b2)                             (addcmul_)
//   p = p + ((-lr/bc1) * m) / (sqrt(v)/sqrt(bc2) + eps)    (addcdiv_)
// This file is compiled with -ffp-contract=off (.bazelrc), so no other FMAs appear.
#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"

namespace loom::cpu {
namespace {

// Per-step constants in the compute type C (float, or double for f64 params).
template <typename C>
struct StepScalars {
  C decay;  // 1 - lr * weight_decay
  C beta1, one_minus_beta1;
  C beta2, one_minus_beta2;
  C bias_correction2_sqrt;
  C neg_step_size;  // -lr / (1 - beta1^step)
  C eps;

  explicit StepScalars(const AdamWParams& p) {
    const double step = double(p.step);
    decay = C(1.0 - p.lr * p.weight_decay);
    beta1 = C(p.beta1);
    one_minus_beta1 = C(1.0 - p.beta1);
    beta2 = C(p.beta2);
    one_minus_beta2 = C(1.0 - p.beta2);
    bias_correction2_sqrt = C(std::sqrt(1.0 - std::pow(p.beta2, step)));
    neg_step_size = C(-(p.lr / (1.0 - std::pow(p.beta1, step))));
    eps = C(p.eps);
  }
};

template <typename C>
inline void UpdateElement(C& p, C g, C& m, C& v, const StepScalars<C>& s) {
  p = p * s.decay;
  m = std::fma(g, s.one_minus_beta1, m * s.beta1);
  v = std::fma(s.one_minus_beta2 * g, g, v * s.beta2);
  const C denom = std::sqrt(v) / s.bias_correction2_sqrt + s.eps;
  p = p + s.neg_step_size * m / denom;
}

// Calls fn(P{}, G{}) with the param and grad element types of tensor i.
template <typename Fn>
void DispatchParamGrad(const Tensor& param, const Tensor& grad, Fn&& fn) {
  DispatchFloating(param.dtype(), "AdamW param", [&](auto ptag) {
    DispatchFloating(grad.dtype(), "AdamW grad", [&](auto gtag) { fn(ptag, gtag); });
  });
}

// Elements [begin, end) of contiguous tensors.
void UpdateContiguousRange(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                           const Tensor& exp_avg_sq, const AdamWParams& params, int64_t begin,
                           int64_t end) {
  DispatchParamGrad(param, grad, [&](auto ptag, auto gtag) {
    using P = decltype(ptag);
    using G = decltype(gtag);
    using C = compute_t<P>;
    const StepScalars<C> s(params);
    P* p = static_cast<P*>(param.raw_data());
    const G* g = static_cast<const G*>(grad.raw_data());
    C* m = static_cast<C*>(exp_avg.raw_data());
    C* v = static_cast<C*>(exp_avg_sq.raw_data());
    for (int64_t i = begin; i < end; ++i) {
      C pi = Load(p[i]);
      UpdateElement<C>(pi, C(Load(g[i])), m[i], v[i], s);
      p[i] = Store<P>(pi);
    }
  });
}

void UpdateStrided(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                   const Tensor& exp_avg_sq, const AdamWParams& params) {
  DispatchParamGrad(param, grad, [&](auto ptag, auto gtag) {
    using P = decltype(ptag);
    using G = decltype(gtag);
    using C = compute_t<P>;
    const StepScalars<C> s(params);
    P* p = static_cast<P*>(param.raw_data());
    const G* g = static_cast<const G*>(grad.raw_data());
    C* m = static_cast<C*>(exp_avg.raw_data());
    C* v = static_cast<C*>(exp_avg_sq.raw_data());
    ForEachStrided<4>({&param, &grad, &exp_avg, &exp_avg_sq},
                      [&](const std::array<int64_t, 4>& off) {
                        C pi = Load(p[off[0]]);
                        UpdateElement<C>(pi, C(Load(g[off[1]])), m[off[2]], v[off[3]], s);
                        p[off[0]] = Store<P>(pi);
                      });
  });
}

}  // namespace

void CpuBackend::AdamW(absl::Span<const Tensor> params, absl::Span<const Tensor> grads,
                       absl::Span<const Tensor> exp_avgs, absl::Span<const Tensor> exp_avg_sqs,
                       const AdamWParams& p) {
  const size_t n = params.size();
  LOOM_CHECK(grads.size() == n && exp_avgs.size() == n && exp_avg_sqs.size() == n,
             "AdamW: %d params but %d grads, %d exp_avgs, %d exp_avg_sqs", n, grads.size(),
             exp_avgs.size(), exp_avg_sqs.size());
  LOOM_CHECK(p.step >= 1, "AdamW: step must be >= 1 (1-based, after increment), got %d", p.step);
  for (size_t i = 0; i < n; ++i) {
    const Tensor& param = params[i];
    LOOM_CHECK(IsFloating(param.dtype()) && IsFloating(grads[i].dtype()),
               "AdamW: tensor %d: param %s and grad %s must be floating", i,
               std::string(DTypeName(param.dtype())), std::string(DTypeName(grads[i].dtype())));
    const DType state_dtype = param.dtype() == DType::kF64 ? DType::kF64 : DType::kF32;
    LOOM_CHECK(exp_avgs[i].dtype() == state_dtype && exp_avg_sqs[i].dtype() == state_dtype,
               "AdamW: tensor %d: %s param needs %s state, got exp_avg %s, exp_avg_sq %s", i,
               std::string(DTypeName(param.dtype())), std::string(DTypeName(state_dtype)),
               std::string(DTypeName(exp_avgs[i].dtype())),
               std::string(DTypeName(exp_avg_sqs[i].dtype())));
    LOOM_CHECK(grads[i].sizes() == param.sizes() && exp_avgs[i].sizes() == param.sizes() &&
                   exp_avg_sqs[i].sizes() == param.sizes(),
               "AdamW: tensor %d: param %s, grad %s, exp_avg %s, exp_avg_sq %s must match", i,
               param.ShapeString(), grads[i].ShapeString(), exp_avgs[i].ShapeString(),
               exp_avg_sqs[i].ShapeString());
  }

  // Contiguous tensors share one flat index space, so many small tensors
  // (norm weights, biases) still make one parallel loop. Others go one by one.
  std::vector<size_t> flat;
  std::vector<int64_t> starts = {0};
  for (size_t i = 0; i < n; ++i) {
    if (params[i].numel() == 0) continue;
    if (AllContiguous<4>({&params[i], &grads[i], &exp_avgs[i], &exp_avg_sqs[i]})) {
      flat.push_back(i);
      starts.push_back(starts.back() + params[i].numel());
    } else {
      UpdateStrided(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], p);
    }
  }
  if (flat.empty()) return;
  ForEachFlat(starts.back(), [&](int64_t begin, int64_t end) {
    // First tensor whose range ends after `begin`.
    size_t t = size_t(std::upper_bound(starts.begin(), starts.end(), begin) - starts.begin()) - 1;
    for (; t < flat.size() && starts[t] < end; ++t) {
      const size_t i = flat[t];
      const int64_t lo = std::max(begin, starts[t]) - starts[t];
      const int64_t hi = std::min(end, starts[t + 1]) - starts[t];
      UpdateContiguousRange(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], p, lo, hi);
    }
  });
}

}  // namespace loom::cpu
