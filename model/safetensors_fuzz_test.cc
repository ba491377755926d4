// Drives the fuzz target (safetensors_fuzz.cc) with deterministic mutations
// of valid files: bit flips, truncations, insertions, header-length edits and
// edits inside the JSON header.
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/safetensors.h"
#include "runtime/philox.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace loom {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> Seeds() {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/seed.safetensors";
  EXPECT_TRUE(WriteSafetensors(path,
                               {{"a", Tensor::FromDoubles({1, 2, 3, 4}, {2, 2}, DType::kF32)},
                                {"b", Tensor::FromVector<bool>({true, false}, {2})},
                                {"c", Tensor::Scalar(1.0, DType::kBF16)}},
                               {{"format", "pt"}})
                  .ok());
  return {ReadFile(path), ReadFile("tests/goldens/llama/tied/model.safetensors")};
}

void FuzzOne(const std::string& bytes) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

TEST(SafetensorsFuzzTest, SurvivesDeterministicMutations) {
  const std::vector<std::string> seeds = Seeds();
  ASSERT_GT(seeds[1].size(), 1000u) << "golden file missing";
  const char* kTokens[] = {"-1",       "18446744073709551615",
                           "[",        "]",
                           "{",        "}",
                           "\"",       ",",
                           "0",        "\"F64\"",
                           "\"BOOL\"", "1e400",
                           "null",     "[0,0]"};
  uint64_t counter = 0;
  int runs = 0;
  for (const std::string& seed : seeds) {
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | uint8_t(seed[size_t(i)]);
    for (int iter = 0; iter < 1500; ++iter) {
      const philox::Block r = philox::Generate(99, counter++);
      std::string m = seed;
      // Most edits land in the header, where the parser's logic is.
      const size_t span = std::min<size_t>(m.size(), 8 + header_len);
      const size_t pos = r.x[1] % span;
      switch (r.x[0] % 6) {
        case 0:  // bit flips
          for (uint32_t k = 0; k <= r.x[2] % 4; ++k)
            m[(pos + k * 7) % m.size()] ^= char(1 << (r.x[3] % 8));
          break;
        case 1:  // truncation
          m.resize(r.x[2] % m.size());
          break;
        case 2:  // insertion
          m.insert(pos, std::string(1 + r.x[2] % 8, char(r.x[3])));
          break;
        case 3:  // header length
          for (int k = 0; k < 8; ++k) m[size_t(k)] = char((r.x[2] >> (k % 4 * 8)) * (k < 4));
          break;
        case 4:  // a JSON token replaces a few header bytes
          if (pos >= 8) m.replace(pos, 1 + r.x[2] % 4, kTokens[r.x[3] % std::size(kTokens)]);
          break;
        case 5:  // a number digit changed in the header
          for (size_t k = pos; k < span; ++k) {
            if (m[k] >= '0' && m[k] <= '9') {
              m[k] = char('0' + r.x[2] % 10);
              break;
            }
          }
          break;
      }
      FuzzOne(m);
      ++runs;
    }
  }
  FuzzOne("");
  FuzzOne(std::string(8, '\0'));
  EXPECT_EQ(runs, 3000);
}

}  // namespace
}  // namespace loom
