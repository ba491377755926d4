#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "runtime/spelling.h"

namespace loom {

double LrSchedule::At(int64_t step) const {
  if (step < warmup_steps) return lr * double(step) / double(warmup_steps);
  if (kind == kConstant) return lr;
  const double p = std::clamp(
      double(step - warmup_steps) / double(std::max<int64_t>(1, total_steps - warmup_steps)), 0.0,
      1.0);
  if (kind == kLinear) return lr * (1.0 - p);
  return lr * (min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + std::cos(std::numbers::pi * p)));
}

absl::StatusOr<LrSchedule::Kind> ParseLrSchedulerName(const std::string& name) {
  if (name == "cosine") return LrSchedule::kCosine;
  if (name == "linear") return LrSchedule::kLinear;
  if (name == "constant") return LrSchedule::kConstant;
  return absl::InvalidArgumentError(
      absl::StrCat("lr_scheduler '", name, "' is not one of cosine, linear, constant",
                   DidYouMean(name, {"cosine", "linear", "constant"})));
}

}  // namespace loom
