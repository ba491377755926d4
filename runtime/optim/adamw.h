// AdamW (decoupled weight decay, bias-corrected moments), as torch.optim.AdamW.
//
//   AdamW opt({{.params = matrices, .weight_decay = 0.1}, {.params = norms_and_biases}},
//             {.lr = 3e-4, .beta2 = 0.95});
//   loss.Backward();
//   ClipGradNorm(all_params, 1.0);
//   opt.Step();
//   opt.ZeroGrad();
//
// The update runs in one fused backend kernel (Backend::AdamW). State is
// created zeroed at a parameter's first step: f32 moments, or f64 for f64
// parameters (bf16/f16 parameters keep f32 moments). As in torch, every
// parameter has its own step count: a parameter whose grad is undefined is
// skipped and its count does not advance, so its bias correction later uses
// the number of updates it actually received.
#ifndef LOOM_RUNTIME_OPTIM_ADAMW_H_
#define LOOM_RUNTIME_OPTIM_ADAMW_H_

#include <cstdint>
#include <vector>

#include "runtime/tensor.h"

namespace loom {

struct AdamWConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

// Parameters sharing a weight decay (norm weights and biases usually take 0).
struct ParamGroup {
  std::vector<Tensor> params;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  // Every parameter decays with config.weight_decay.
  AdamW(std::vector<Tensor> params, AdamWConfig config);
  // Each group's weight_decay replaces config.weight_decay for its params.
  // Parameters are numbered in group order, then in order within a group.
  AdamW(std::vector<ParamGroup> groups, AdamWConfig config);

  // One update of every parameter with a defined grad; runs without autograd.
  void Step();
  // Drops the grads (undefined, as torch's set_to_none), so the next backward
  // allocates fresh ones and params that get none are skipped by Step.
  void ZeroGrad();

  void set_lr(double lr) { config_.lr = lr; }
  double lr() const { return config_.lr; }
  const AdamWConfig& config() const { return config_; }
  // Number of Step() calls.
  int64_t step_count() const { return step_count_; }

  size_t num_params() const { return params_.size(); }
  const Tensor& param(size_t i) const;
  double weight_decay(size_t i) const;
  // Updates parameter i received (torch's state["step"]).
  int64_t param_step(size_t i) const;
  // Moments of parameter i; undefined before its first update.
  const Tensor& exp_avg(size_t i) const;
  const Tensor& exp_avg_sq(size_t i) const;

  // Restores saved state (checkpoint loading): values are copied into state
  // tensors of parameter i's shape and state dtype.
  void SetState(size_t i, int64_t param_step, const Tensor& exp_avg, const Tensor& exp_avg_sq);
  void set_step_count(int64_t steps) { step_count_ = steps; }

 private:
  struct ParamState {
    Tensor param;
    double weight_decay = 0.0;
    int64_t step = 0;
    Tensor exp_avg;
    Tensor exp_avg_sq;
  };

  void AddParam(const Tensor& param, double weight_decay);
  const ParamState& state(size_t i) const;

  AdamWConfig config_;
  std::vector<ParamState> params_;
  int64_t step_count_ = 0;
};

}  // namespace loom

#endif  // LOOM_RUNTIME_OPTIM_ADAMW_H_
