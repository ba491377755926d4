#include "data/synthetic_tasks.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/philox.h"
#include "runtime/spelling.h"

namespace loom::data {
namespace {

// Counter space: task in the top bits, row index below, one draw per value.
struct Draws {
  uint64_t seed, base;
  int next = 0;
  uint32_t Below(uint32_t n) {
    const philox::Block b = philox::Generate(seed, base + uint64_t(next / 4));
    return b.x[next++ % 4] % n;
  }
};

std::string Letters(Draws& d) {
  std::string s(3 + d.Below(4), 'a');
  for (char& c : s) c = char('a' + d.Below(26));
  return s;
}

}  // namespace

SyntheticRow MakeSyntheticRow(SyntheticTask task, uint64_t seed, uint64_t index) {
  Draws d{seed, (uint64_t(task) << 56) + index * 8};
  SyntheticRow row;
  switch (task) {
    case SyntheticTask::kReverse: {
      const std::string w = Letters(d);
      row = {"rev " + w, std::string(w.rbegin(), w.rend())};
      break;
    }
    case SyntheticTask::kSort: {
      std::string digits(3 + d.Below(4), '0');
      for (char& c : digits) c = char('0' + d.Below(10));
      std::string sorted = digits;
      std::sort(sorted.begin(), sorted.end());
      row = {"sort " + digits, sorted};
      break;
    }
    case SyntheticTask::kAdd: {
      const uint32_t a = d.Below(100), b = d.Below(100);
      row = {absl::StrCat("add ", a, " ", b), absl::StrCat(a + b)};
      break;
    }
    case SyntheticTask::kUpper: {
      std::string w = Letters(d);
      std::string up = w;
      for (char& c : up) c = char(c - 'a' + 'A');
      row = {"up " + w, up};
      break;
    }
  }
  return row;
}

absl::StatusOr<SyntheticTask> ParseSyntheticTask(const std::string& name) {
  for (SyntheticTask t : {SyntheticTask::kReverse, SyntheticTask::kSort, SyntheticTask::kAdd,
                          SyntheticTask::kUpper}) {
    if (name == SyntheticTaskName(t)) return t;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown task '", name, "' (rev, sort, add, up)",
                                                 DidYouMean(name, {"rev", "sort", "add", "up"})));
}

const char* SyntheticTaskName(SyntheticTask task) {
  switch (task) {
    case SyntheticTask::kReverse:
      return "rev";
    case SyntheticTask::kSort:
      return "sort";
    case SyntheticTask::kAdd:
      return "add";
    case SyntheticTask::kUpper:
      return "up";
  }
  return "?";
}

}  // namespace loom::data
