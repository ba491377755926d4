// Hugging Face byte-level BPE tokenizers (GPT-2 and Llama-3 families) from a
// tokenizer.json, with BOS/EOS/PAD and the chat template from
// tokenizer_config.json when it is beside it.
//
//   LOOM_ASSIGN_OR_RETURN(std::unique_ptr<BpeTokenizer> tok, LoadBpeTokenizer("my-model/"));
//   std::vector<int32_t> ids = tok->Encode("Hello<|eot_id|>");
//
// Supported: model BPE over the byte-level alphabet (merges as "a b" strings
// or [a, b] pairs, ignore_merges), pre-tokenizers ByteLevel (GPT-2 regex,
// add_prefix_space) and Sequence[Split(GPT-2 or Llama-3 regex, Isolated),
// ByteLevel(use_regex false)], no normalizer, added tokens (special or not;
// lstrip, rstrip), post-processors ByteLevel and TemplateProcessing (which
// decides whether BOS/EOS are added; tokenizer_config's add_bos_token /
// add_eos_token override it). Anything else is rejected with an error that
// names the file and the field, never silently tokenized differently.
#ifndef LOOM_DATA_BPE_TOKENIZER_H_
#define LOOM_DATA_BPE_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "data/pretokenizer.h"
#include "data/tokenizer.h"

namespace loom::data {

class BpeTokenizer final : public Tokenizer {
 public:
  struct AddedToken {
    std::string content;
    int32_t id = 0;
    bool special = false, lstrip = false, rstrip = false;
  };
  struct Rules {
    bool use_split = true;  // run the split pattern at all
    SplitPattern pattern = SplitPattern::kGpt2;
    bool add_prefix_space = false;
    bool ignore_merges = false;
    int32_t bos_id = -1, eos_id = -1, pad_id = -1;
    bool adds_bos = false, adds_eos = false;
    std::string chat_template;
    std::string fingerprint;
  };

  // vocab: token string (byte-level alphabet) -> id; merges in rank order.
  BpeTokenizer(const absl::flat_hash_map<std::string, int32_t>& vocab,
               const std::vector<std::pair<std::string, std::string>>& merges,
               std::vector<AddedToken> added, Rules rules);

  int64_t vocab_size() const override { return int64_t(id_bytes_.size()); }
  int32_t bos_id() const override { return rules_.bos_id; }
  int32_t eos_id() const override { return rules_.eos_id; }
  int32_t pad_id() const override { return rules_.pad_id; }
  bool adds_bos() const override { return rules_.adds_bos; }
  bool adds_eos() const override { return rules_.adds_eos; }
  std::vector<int32_t> Encode(absl::string_view text) const override;
  std::vector<int32_t> EncodeWithOffsets(
      absl::string_view text, std::vector<std::pair<size_t, size_t>>* offsets) const override;
  std::string Decode(absl::Span<const int32_t> ids) const override;
  std::optional<int32_t> TokenId(absl::string_view token) const override;
  std::string Fingerprint() const override { return rules_.fingerprint; }
  std::string chat_template() const override { return rules_.chat_template; }

  // Error found while building (a byte missing from the vocabulary, a merge
  // of unknown tokens); checked by the loader.
  const std::string& build_error() const { return build_error_; }

 private:
  // Ids of one pre-token (raw bytes).
  void EncodeWord(absl::string_view word, std::vector<int32_t>* out) const;
  void EncodePlain(absl::string_view text, size_t base, std::vector<int32_t>* ids,
                   std::vector<std::pair<size_t, size_t>>* offsets) const;

  Rules rules_;
  int32_t byte_id_[256];
  absl::flat_hash_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // pair -> (rank, merged id)
  absl::flat_hash_map<std::string, int32_t> vocab_by_bytes_;  // raw bytes -> id (ignore_merges)
  std::vector<std::string> id_bytes_;                         // id -> raw bytes
  std::vector<bool> id_special_;
  std::vector<AddedToken> added_;  // longest first
  bool added_first_byte_[256] = {};
  std::string build_error_;
  mutable absl::Mutex cache_mu_;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache_ ABSL_GUARDED_BY(cache_mu_);
};

// `path`: a folder holding tokenizer.json (and maybe tokenizer_config.json),
// or a tokenizer.json file.
absl::StatusOr<std::unique_ptr<BpeTokenizer>> LoadBpeTokenizer(const std::string& path);

// True if `folder` has a tokenizer.json.
bool HasHfTokenizer(const std::string& folder);

}  // namespace loom::data

#endif  // LOOM_DATA_BPE_TOKENIZER_H_
