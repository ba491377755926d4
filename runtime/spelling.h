// "Did you mean": the closest valid name to a misspelled one, for config
// readers (YAML keys, config.json keys, enum values).
//
//   std::string hint = ClosestMatch("learnin_rate", {"learning_rate", "seed"});
//   // "learning_rate"
#ifndef LOOM_RUNTIME_SPELLING_H_
#define LOOM_RUNTIME_SPELLING_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace loom {

// Edit distance (insertions, deletions, substitutions, and transpositions of
// adjacent characters), case-insensitive.
int EditDistance(absl::string_view a, absl::string_view b);

// The candidate with the smallest edit distance to `name`, or "" when even
// that one is farther than max(2, name.size() / 3): a suggestion that far off
// would mislead more than help. A candidate that starts with `name` (at least
// 4 characters) counts as distance 1. Ties go to the earlier candidate.
std::string ClosestMatch(absl::string_view name, const std::vector<std::string>& candidates);

// ", did you mean 'x'?" or "" (ready to append to an error message).
std::string DidYouMean(absl::string_view name, const std::vector<std::string>& candidates);

}  // namespace loom

#endif  // LOOM_RUNTIME_SPELLING_H_
