// Tokenizers. The byte-level tokenizer maps each UTF-8 byte to its value
// (0..255) and adds BOS, EOS and PAD after them; it needs no vocabulary file,
// so the embedded example and tests run with nothing downloaded. Hugging Face
// tokenizers arrive with the data-pipeline issue behind the same interface.
#ifndef LOOM_DATA_TOKENIZER_H_
#define LOOM_DATA_TOKENIZER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace loom::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual int64_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual int32_t pad_id() const = 0;
  // Text to ids, without BOS or EOS.
  virtual std::vector<int32_t> Encode(absl::string_view text) const = 0;
  // Ids to text; special ids are skipped.
  virtual std::string Decode(absl::Span<const int32_t> ids) const = 0;
};

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kBos = 256, kEos = 257, kPad = 258;
  int64_t vocab_size() const override { return 259; }
  int32_t bos_id() const override { return kBos; }
  int32_t eos_id() const override { return kEos; }
  int32_t pad_id() const override { return kPad; }
  std::vector<int32_t> Encode(absl::string_view text) const override;
  std::string Decode(absl::Span<const int32_t> ids) const override;
};

}  // namespace loom::data

#endif  // LOOM_DATA_TOKENIZER_H_
