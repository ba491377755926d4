// Pre-tokenizers of byte-level BPE tokenizers: the GPT-2 and Llama-3 split
// regexes, matched by hand-written code over Unicode class tables
// (data/unicode_tables.h) instead of a regex engine.
//
//   std::vector<Piece> pieces;
//   PreTokenize("Hello world!", SplitPattern::kLlama3, &pieces);  // "Hello", " world", "!"
//
// GPT-2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Llama-3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// The pieces cover the text exactly, in order (every alternative set ends
// in \s+ or a class that matches anything else).
#ifndef LOOM_DATA_PRETOKENIZER_H_
#define LOOM_DATA_PRETOKENIZER_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace loom::data {

enum class SplitPattern { kGpt2, kLlama3 };

// The regex source strings as they appear in tokenizer.json.
extern const char kGpt2SplitRegex[];
extern const char kLlama3SplitRegex[];

struct Piece {
  size_t begin, end;  // byte offsets into the text
};

void PreTokenize(absl::string_view text, SplitPattern pattern, std::vector<Piece>* pieces);

}  // namespace loom::data

#endif  // LOOM_DATA_PRETOKENIZER_H_
