// Module: a tree of named parameters, as torch.nn.Module, with the names
// Hugging Face checkpoints use ("model.layers.3.self_attn.q_proj.weight"), so
// state dicts, safetensors I/O and (later) sharding plans speak one language.
//
//   class Mlp : public Module {
//    public:
//     Mlp() { up_ = &RegisterModule("up_proj", std::make_unique<Linear>(64, 256)); }
//     Tensor Forward(const Tensor& x) {
//       ForwardScope scope(*this);   // runs pre- and post-forward hooks
//       return up_->Forward(x);
//     }
//   };
//
// Forward hooks are how parallel wrappers attach to a module without the
// model code knowing: FSDP gathers parameters in a pre-forward hook and frees
// them in a post-forward hook. Parameters are leaf tensors; their storage can
// be swapped with Tensor::SetData under every handle (checkpoint loading,
// FSDP), so modules hold handles, never raw pointers to data.
#ifndef LOOM_MODEL_MODULE_H_
#define LOOM_MODEL_MODULE_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/tensor.h"

namespace loom {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  using ForwardHook = std::function<void(Module&)>;

  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // Every parameter of this module and its descendants, depth-first in
  // registration order, with dotted names. A tensor registered under two
  // names (tied weights) is listed once, under the first.
  NamedTensors NamedParameters() const;
  std::vector<Tensor> Parameters() const;
  // The parameter with this dotted name, or an undefined tensor.
  Tensor FindParameter(const std::string& name) const;
  // Direct children, in registration order.
  const std::vector<std::pair<std::string, std::unique_ptr<Module>>>& children() const {
    return children_;
  }
  int64_t NumParameters() const;

  void AddPreForwardHook(ForwardHook hook) { pre_forward_.push_back(std::move(hook)); }
  void AddPostForwardHook(ForwardHook hook) { post_forward_.push_back(std::move(hook)); }

 protected:
  // Registers a leaf tensor (requires_grad is set) under `name`.
  const Tensor& RegisterParameter(std::string name, Tensor tensor);
  template <typename M>
  M& RegisterModule(std::string name, std::unique_ptr<M> module) {
    M& ref = *module;
    children_.emplace_back(std::move(name), std::move(module));
    return ref;
  }

  // Runs pre-forward hooks on construction and post-forward hooks on
  // destruction; every public Forward opens one.
  class ForwardScope {
   public:
    explicit ForwardScope(Module& m) : m_(m) {
      for (auto& h : m_.pre_forward_) h(m_);
    }
    ~ForwardScope() {
      for (auto& h : m_.post_forward_) h(m_);
    }
    ForwardScope(const ForwardScope&) = delete;
    ForwardScope& operator=(const ForwardScope&) = delete;

   private:
    Module& m_;
  };

 private:
  void Collect(const std::string& prefix, NamedTensors* out) const;

  NamedTensors params_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
  std::vector<ForwardHook> pre_forward_, post_forward_;
};

}  // namespace loom

#endif  // LOOM_MODEL_MODULE_H_
