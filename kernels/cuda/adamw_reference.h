// Plain host reference of the CUDA AdamW kernel (adamw.h), for tests: one
// tensor at a time, the formula of kernels/cpu/adamw.cc with every operation
// rounded once in the compute type C (compile with -ffp-contract=off).
//
//   AdamWReference<BFloat16, float>(p.data(), g.data(), m.data(), v.data(), n, lr, ...);
#ifndef LOOM_KERNELS_CUDA_ADAMW_REFERENCE_H_
#define LOOM_KERNELS_CUDA_ADAMW_REFERENCE_H_

#include <cmath>
#include <cstdint>

#include "runtime/dtype.h"

namespace loom::reference {

template <typename P, typename G>
void AdamWReference(P* param, const G* grad, compute_t<P>* exp_avg, compute_t<P>* exp_avg_sq,
                    int64_t n, double lr, double beta1, double beta2, double eps,
                    double weight_decay, int64_t step) {
  using C = compute_t<P>;
  const C decay = C(1.0 - lr * weight_decay);
  const C b1 = C(beta1), omb1 = C(1.0 - beta1), b2 = C(beta2), omb2 = C(1.0 - beta2);
  const C bc2_sqrt = C(std::sqrt(1.0 - std::pow(beta2, double(step))));
  const C neg_step_size = C(-(lr / (1.0 - std::pow(beta1, double(step)))));
  const C e = C(eps);
  for (int64_t i = 0; i < n; ++i) {
    C p = Load(param[i]);
    const C g = C(Load(grad[i]));
    p = p * decay;
    exp_avg[i] = std::fma(g, omb1, exp_avg[i] * b1);
    exp_avg_sq[i] = std::fma(omb2 * g, g, exp_avg_sq[i] * b2);
    const C denom = std::sqrt(exp_avg_sq[i]) / bc2_sqrt + e;
    p = p + (neg_step_size * exp_avg[i]) / denom;
    param[i] = Store<P>(p);
  }
}

}  // namespace loom::reference

#endif  // LOOM_KERNELS_CUDA_ADAMW_REFERENCE_H_
