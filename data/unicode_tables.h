// Unicode classes for the pre-tokenizer: letters (\p{L}), numbers (\p{N})
// and whitespace (\s), as sorted code point ranges generated from Python's
// unicodedata by tools/goldens/gen_unicode_tables.py.
//
//   if (unicode::Classify(cp) == unicode::CharClass::kLetter) ...
#ifndef LOOM_DATA_UNICODE_TABLES_H_
#define LOOM_DATA_UNICODE_TABLES_H_

#include <cstddef>
#include <cstdint>

namespace loom::data::unicode {

struct CodePointRange {
  uint32_t lo, hi;  // inclusive
};

extern const CodePointRange kLetters[];
extern const size_t kLettersSize;
extern const CodePointRange kNumbers[];
extern const size_t kNumbersSize;
extern const CodePointRange kWhitespace[];
extern const size_t kWhitespaceSize;

enum class CharClass : uint8_t { kOther, kLetter, kNumber, kWhitespace };

// The class of code point `cp` (ASCII by table, the rest by binary search).
CharClass Classify(uint32_t cp);

// Decodes one UTF-8 code point at text[i], setting *len to its byte count.
// An invalid or truncated sequence decodes as the single byte (as U+FFFD's
// class: other), len 1, so every byte is covered exactly once.
uint32_t DecodeUtf8(const char* text, size_t size, size_t i, size_t* len);

}  // namespace loom::data::unicode

#endif  // LOOM_DATA_UNICODE_TABLES_H_
