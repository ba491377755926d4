#include "model/module.h"

#include <unordered_set>

namespace loom {

const Tensor& Module::RegisterParameter(std::string name, Tensor tensor) {
  LOOM_CHECK(tensor.defined() && tensor.is_leaf(), "parameter '%s' must be a defined leaf tensor",
             name);
  for (const auto& [existing, t] : params_) {
    LOOM_CHECK(existing != name, "parameter '%s' registered twice", name);
  }
  tensor.set_requires_grad(true);
  params_.emplace_back(std::move(name), std::move(tensor));
  return params_.back().second;
}

void Module::Collect(const std::string& prefix, NamedTensors* out) const {
  for (const auto& [name, t] : params_) out->emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->Collect(prefix + name + ".", out);
}

NamedTensors Module::NamedParameters() const {
  NamedTensors all;
  Collect("", &all);
  NamedTensors unique;
  std::unordered_set<const TensorImpl*> seen;
  for (auto& [name, t] : all) {
    if (seen.insert(t.impl()).second) unique.emplace_back(std::move(name), std::move(t));
  }
  return unique;
}

std::vector<Tensor> Module::Parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : NamedParameters()) out.push_back(t);
  return out;
}

Tensor Module::FindParameter(const std::string& name) const {
  for (auto& [n, t] : NamedParameters()) {
    if (n == name) return t;
  }
  return Tensor();
}

int64_t Module::NumParameters() const {
  int64_t n = 0;
  for (const Tensor& t : Parameters()) n += t.numel();
  return n;
}

}  // namespace loom
