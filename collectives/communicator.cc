#include "collectives/communicator.h"

#include <cstdlib>

#include "absl/strings/numbers.h"

namespace loom::collectives {
namespace {

class DoneWork final : public Work {
 public:
  explicit DoneWork(absl::Status status) : status_(std::move(status)) {}
  absl::Status Wait() override { return status_; }
  bool IsCompleted() override { return true; }

 private:
  absl::Status status_;
};

}  // namespace

const char* ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
  }
  return "?";
}

WorkHandle CompletedWork(absl::Status status) {
  return std::make_shared<DoneWork>(std::move(status));
}

CommOptions CommOptionsFromEnv(CommOptions base) {
  if (const char* t = std::getenv("LOOM_COLLECTIVE_TIMEOUT"); t != nullptr) {
    double seconds = 0;
    if (absl::SimpleAtod(t, &seconds) && seconds > 0) base.timeout = absl::Seconds(seconds);
  }
  if (const char* c = std::getenv("LOOM_COLLECTIVE_CHECK"); c != nullptr) {
    base.check_collectives = std::string(c) != "0";
  }
  return base;
}

}  // namespace loom::collectives
