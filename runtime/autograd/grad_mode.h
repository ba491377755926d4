// Whether ops record autograd history on this thread.
//
//   { NoGradGuard no_grad; y = MatMul(x, w); }   // y has no grad_fn
#ifndef LOOM_RUNTIME_AUTOGRAD_GRAD_MODE_H_
#define LOOM_RUNTIME_AUTOGRAD_GRAD_MODE_H_

namespace loom {

class GradMode {
 public:
  static bool IsEnabled() { return enabled_; }
  static void SetEnabled(bool e) { enabled_ = e; }

 private:
  static thread_local bool enabled_;
};

class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : prev_(GradMode::IsEnabled()) { GradMode::SetEnabled(enabled); }
  ~GradModeGuard() { GradMode::SetEnabled(prev_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

class NoGradGuard : public GradModeGuard {
 public:
  NoGradGuard() : GradModeGuard(false) {}
};

}  // namespace loom

#endif  // LOOM_RUNTIME_AUTOGRAD_GRAD_MODE_H_
