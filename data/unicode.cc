#include <algorithm>
#include <array>

#include "data/unicode_tables.h"

namespace loom::data::unicode {
namespace {

bool InRanges(const CodePointRange* r, size_t n, uint32_t cp) {
  const CodePointRange* end = r + n;
  const CodePointRange* it =
      std::upper_bound(r, end, cp, [](uint32_t v, const CodePointRange& x) { return v < x.lo; });
  return it != r && (it - 1)->hi >= cp;
}

CharClass ClassifySlow(uint32_t cp) {
  if (InRanges(kWhitespace, kWhitespaceSize, cp)) return CharClass::kWhitespace;
  if (InRanges(kLetters, kLettersSize, cp)) return CharClass::kLetter;
  if (InRanges(kNumbers, kNumbersSize, cp)) return CharClass::kNumber;
  return CharClass::kOther;
}

}  // namespace

CharClass Classify(uint32_t cp) {
  static const std::array<CharClass, 256> kLatin1 = [] {
    std::array<CharClass, 256> t{};
    for (uint32_t c = 0; c < 256; ++c) t[c] = ClassifySlow(c);
    return t;
  }();
  return cp < 256 ? kLatin1[cp] : ClassifySlow(cp);
}

uint32_t DecodeUtf8(const char* text, size_t size, size_t i, size_t* len) {
  const auto b = [&](size_t k) { return uint32_t(static_cast<unsigned char>(text[k])); };
  const uint32_t c = b(i);
  *len = 1;
  if (c < 0x80) return c;
  size_t n = 0;
  uint32_t cp = 0, min = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return 0xFFFD;
  }
  if (i + n > size) return 0xFFFD;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0xFFFD;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0xFFFD;
  *len = n;
  return cp;
}

}  // namespace loom::data::unicode
