#include "runtime/spelling.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"

namespace loom {

int EditDistance(absl::string_view a, absl::string_view b) {
  const size_t n = a.size(), m = b.size();
  auto eq = [&](size_t i, size_t j) {
    return std::tolower(static_cast<unsigned char>(a[i])) ==
           std::tolower(static_cast<unsigned char>(b[j]));
  };
  // d[i][j]: distance between a[0, i) and b[0, j) (optimal string alignment).
  std::vector<std::vector<int>> d(n + 1, std::vector<int>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = int(i);
  for (size_t j = 0; j <= m; ++j) d[0][j] = int(j);
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (eq(i - 1, j - 1) ? 0 : 1)});
      if (i > 1 && j > 1 && eq(i - 1, j - 2) && eq(i - 2, j - 1)) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string ClosestMatch(absl::string_view name, const std::vector<std::string>& candidates) {
  const int limit = std::max<int>(2, int(name.size()) / 3);
  int best = limit + 1;
  std::string match;
  for (const std::string& c : candidates) {
    int dist = EditDistance(name, c);
    // A truncated name ("micro_batch") is a strong hint however many
    // characters are missing.
    if (name.size() >= 4 && c.size() > name.size() &&
        EditDistance(name, absl::string_view(c).substr(0, name.size())) == 0) {
      dist = std::min(dist, 1);
    }
    if (dist < best) {
      best = dist;
      match = c;
    }
  }
  return match;
}

std::string DidYouMean(absl::string_view name, const std::vector<std::string>& candidates) {
  const std::string match = ClosestMatch(name, candidates);
  return match.empty() ? "" : absl::StrCat(", did you mean '", match, "'?");
}

}  // namespace loom
