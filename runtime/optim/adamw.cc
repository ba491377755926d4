#include "runtime/optim/adamw.h"

#include <string>
#include <unordered_set>
#include <utility>

#include "runtime/autograd/grad_mode.h"
#include "runtime/backend.h"
#include "runtime/ops/elementwise.h"

namespace loom {
namespace {

DType StateDType(DType param_dtype) {
  return param_dtype == DType::kF64 ? DType::kF64 : DType::kF32;
}

// Tensors updated by one kernel call: same device, step and weight decay.
struct Batch {
  Device device;
  int64_t step;
  double weight_decay;
  std::vector<Tensor> params, grads, exp_avgs, exp_avg_sqs;
};

}  // namespace

AdamW::AdamW(std::vector<Tensor> params, AdamWConfig config) : config_(config) {
  for (const Tensor& p : params) AddParam(p, config_.weight_decay);
}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWConfig config) : config_(config) {
  for (const ParamGroup& g : groups) {
    for (const Tensor& p : g.params) AddParam(p, g.weight_decay);
  }
}

void AdamW::AddParam(const Tensor& param, double weight_decay) {
  LOOM_CHECK(param.defined(), "AdamW: parameter %d is undefined", params_.size());
  LOOM_CHECK(IsFloating(param.dtype()), "AdamW: parameter %d (%s) has dtype %s; expected a float",
             params_.size(), param.name(), std::string(DTypeName(param.dtype())));
  for (const ParamState& s : params_) {
    LOOM_CHECK(!s.param.is_same(param), "AdamW: parameter %s is given twice", param.name());
  }
  params_.push_back({.param = param, .weight_decay = weight_decay});
}

const AdamW::ParamState& AdamW::state(size_t i) const {
  LOOM_CHECK(i < params_.size(), "AdamW: parameter index %d out of range (%d params)", i,
             params_.size());
  return params_[i];
}

const Tensor& AdamW::param(size_t i) const { return state(i).param; }
double AdamW::weight_decay(size_t i) const { return state(i).weight_decay; }
int64_t AdamW::param_step(size_t i) const { return state(i).step; }
const Tensor& AdamW::exp_avg(size_t i) const { return state(i).exp_avg; }
const Tensor& AdamW::exp_avg_sq(size_t i) const { return state(i).exp_avg_sq; }

void AdamW::Step() {
  NoGradGuard no_grad;
  ++step_count_;
  std::vector<Batch> batches;
  for (size_t i = 0; i < params_.size(); ++i) {
    ParamState& s = params_[i];
    const Tensor grad = s.param.grad();
    if (!grad.defined()) continue;
    LOOM_CHECK(grad.sizes() == s.param.sizes() && grad.device() == s.param.device(),
               "AdamW: parameter %d (%s) of shape %s on %s has a grad of shape %s on %s", i,
               s.param.name(), s.param.ShapeString(), s.param.device().ToString(),
               grad.ShapeString(), grad.device().ToString());
    if (!s.exp_avg.defined()) {
      const DType dt = StateDType(s.param.dtype());
      s.exp_avg = Tensor::Zeros(s.param.sizes(), dt, s.param.device());
      s.exp_avg_sq = Tensor::Zeros(s.param.sizes(), dt, s.param.device());
    }
    LOOM_CHECK(s.exp_avg.sizes() == s.param.sizes(),
               "AdamW: parameter %d (%s) is now %s but its state is %s", i, s.param.name(),
               s.param.ShapeString(), s.exp_avg.ShapeString());
    ++s.step;
    Batch* batch = nullptr;
    for (Batch& b : batches) {
      if (b.device == s.param.device() && b.step == s.step && b.weight_decay == s.weight_decay) {
        batch = &b;
        break;
      }
    }
    if (batch == nullptr) {
      batch = &batches.emplace_back(
          Batch{.device = s.param.device(), .step = s.step, .weight_decay = s.weight_decay});
    }
    batch->params.push_back(s.param);
    batch->grads.push_back(grad);
    batch->exp_avgs.push_back(s.exp_avg);
    batch->exp_avg_sqs.push_back(s.exp_avg_sq);
  }
  for (const Batch& b : batches) {
    const AdamWParams p{.lr = config_.lr,
                        .beta1 = config_.beta1,
                        .beta2 = config_.beta2,
                        .eps = config_.eps,
                        .weight_decay = b.weight_decay,
                        .step = b.step};
    GetBackend(b.device).AdamW(b.params, b.grads, b.exp_avgs, b.exp_avg_sqs, p);
  }
}

void AdamW::ZeroGrad() {
  for (ParamState& s : params_) s.param.set_grad(Tensor());
}

void AdamW::SetState(size_t i, int64_t param_step, const Tensor& exp_avg,
                     const Tensor& exp_avg_sq) {
  LOOM_CHECK(i < params_.size(), "AdamW::SetState: index %d out of range (%d params)", i,
             params_.size());
  ParamState& s = params_[i];
  LOOM_CHECK(param_step >= 0, "AdamW::SetState: parameter %d: negative step %d", i, param_step);
  LOOM_CHECK(exp_avg.sizes() == s.param.sizes() && exp_avg_sq.sizes() == s.param.sizes(),
             "AdamW::SetState: parameter %d (%s) is %s but exp_avg is %s and exp_avg_sq %s", i,
             s.param.name(), s.param.ShapeString(), exp_avg.ShapeString(),
             exp_avg_sq.ShapeString());
  NoGradGuard no_grad;
  const DType dt = StateDType(s.param.dtype());
  s.exp_avg = Tensor::Empty(s.param.sizes(), dt, s.param.device());
  s.exp_avg_sq = Tensor::Empty(s.param.sizes(), dt, s.param.device());
  CopyInto(s.exp_avg, exp_avg);
  CopyInto(s.exp_avg_sq, exp_avg_sq);
  s.step = param_step;
}

}  // namespace loom
