// A stable 64-bit hash (the MurmurHash64A construction) for cache keys and
// checksums: the same value on every machine and run, unlike absl::Hash.
//
//   uint64_t h = Hash64("some bytes");
//   h = Hash64("more bytes", h);  // chained over pieces
//   LOOM_ASSIGN_OR_RETURN(uint64_t f, HashFile("data/train.jsonl"));
#ifndef LOOM_DATA_HASH_H_
#define LOOM_DATA_HASH_H_

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace loom::data {

inline uint64_t Hash64(absl::string_view bytes, uint64_t seed = 0x5eed5eed5eed5eedull) {
  constexpr uint64_t m = 0xc6a4a7935bd1e995ull;
  constexpr int r = 47;
  const size_t n = bytes.size();
  uint64_t h = seed ^ (uint64_t(n) * m);
  const char* p = bytes.data();
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t k;
    std::memcpy(&k, p + i, 8);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  const size_t tail = n & ~size_t(7);
  if (n & 7) {
    uint64_t k = 0;
    for (size_t i = n; i > tail; --i) k = (k << 8) | uint64_t(static_cast<unsigned char>(p[i - 1]));
    h ^= k;
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

// The hash of a file's bytes, read in blocks.
absl::StatusOr<uint64_t> HashFile(const std::string& path);

std::string HexHash(uint64_t h);

}  // namespace loom::data

#endif  // LOOM_DATA_HASH_H_
