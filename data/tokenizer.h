// The tokenizer interface and the byte-level tokenizer of the embedded
// default. Hugging Face tokenizer.json files load as BpeTokenizer
// (data/bpe_tokenizer.h) behind the same interface.
//
//   ByteTokenizer tok;
//   std::vector<int32_t> ids = tok.Encode("hi");     // {104, 105}
//   std::string text = tok.Decode(ids);              // "hi"
//
// The byte-level tokenizer maps each UTF-8 byte to its value (0..255) and
// adds BOS, EOS and PAD after them; it needs no vocabulary file, so the
// embedded example and tests run with nothing downloaded.
#ifndef LOOM_DATA_TOKENIZER_H_
#define LOOM_DATA_TOKENIZER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace loom::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual int64_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 if the tokenizer has none
  virtual int32_t eos_id() const = 0;
  virtual int32_t pad_id() const = 0;
  // Whether encoding a text for training starts it with BOS (Hugging Face's
  // post-processor / add_bos_token) and ends it with EOS.
  virtual bool adds_bos() const = 0;
  virtual bool adds_eos() const { return false; }
  // Text to ids, without BOS or EOS. Added and special tokens written in
  // the text (e.g. "<|eot_id|>") become their ids.
  virtual std::vector<int32_t> Encode(absl::string_view text) const = 0;
  // Encode, and each token's byte span [first, second) in `text`.
  virtual std::vector<int32_t> EncodeWithOffsets(
      absl::string_view text, std::vector<std::pair<size_t, size_t>>* offsets) const = 0;
  // Ids to text; special ids are skipped.
  virtual std::string Decode(absl::Span<const int32_t> ids) const = 0;
  // The id of a token that exists as one piece (an added or special token,
  // or a vocabulary entry), if any.
  virtual std::optional<int32_t> TokenId(absl::string_view token) const = 0;
  // A stable description of the vocabulary and rules, for cache keys.
  virtual std::string Fingerprint() const = 0;
  // tokenizer_config.json's chat_template (Jinja source), if any.
  virtual std::string chat_template() const { return ""; }
};

class ByteTokenizer final : public Tokenizer {
 public:
  static constexpr int32_t kBos = 256, kEos = 257, kPad = 258;
  int64_t vocab_size() const override { return 259; }
  int32_t bos_id() const override { return kBos; }
  int32_t eos_id() const override { return kEos; }
  int32_t pad_id() const override { return kPad; }
  bool adds_bos() const override { return true; }
  std::vector<int32_t> Encode(absl::string_view text) const override;
  std::vector<int32_t> EncodeWithOffsets(
      absl::string_view text, std::vector<std::pair<size_t, size_t>>* offsets) const override;
  std::string Decode(absl::Span<const int32_t> ids) const override;
  std::optional<int32_t> TokenId(absl::string_view token) const override;
  std::string Fingerprint() const override { return "byte-level v1"; }
};

}  // namespace loom::data

#endif  // LOOM_DATA_TOKENIZER_H_
