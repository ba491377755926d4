// Learning-rate schedules, as transformers' get_scheduler: a linear warmup
// from 0, then constant, linear decay to 0, or cosine decay to
// min_lr_ratio * lr.
//
//   LrSchedule s{.kind = LrSchedule::kCosine, .lr = 3e-4, .warmup_steps = 100,
//                .total_steps = 1000};
//   opt.set_lr(s.At(step));   // step = optimizer steps already taken (0-based)
#ifndef LOOM_TRAIN_LR_SCHEDULE_H_
#define LOOM_TRAIN_LR_SCHEDULE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace loom {

struct LrSchedule {
  enum Kind { kConstant, kLinear, kCosine };
  Kind kind = kCosine;
  double lr = 0.0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double min_lr_ratio = 0.0;  // cosine only

  // Learning rate for the update that follows `step` completed updates:
  // warmup: lr * step / warmup_steps (step < warmup_steps);
  // then p = (step - warmup) / (total - warmup) and
  //   constant: lr; linear: lr * (1 - p); cosine: lr * (m + (1 - m) * 0.5 * (1 + cos(pi p))).
  double At(int64_t step) const;
};

// "cosine" | "linear" | "constant" (errors list the valid names).
absl::StatusOr<LrSchedule::Kind> ParseLrSchedulerName(const std::string& name);

}  // namespace loom

#endif  // LOOM_TRAIN_LR_SCHEDULE_H_
