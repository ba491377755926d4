#include "data/hash.h"

#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace loom::data {

absl::StatusOr<uint64_t> HashFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::vector<char> block(1 << 20);
  uint64_t h = Hash64("file");
  while (in) {
    in.read(block.data(), std::streamsize(block.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    h = Hash64(absl::string_view(block.data(), size_t(got)), h);
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return h;
}

std::string HexHash(uint64_t h) { return absl::StrFormat("%016x", h); }

}  // namespace loom::data
