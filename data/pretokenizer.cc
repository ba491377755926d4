#include "data/pretokenizer.h"

#include "data/unicode_tables.h"

namespace loom::data {

const char kGpt2SplitRegex[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char kLlama3SplitRegex[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

using unicode::CharClass;

// The text as code points with their classes and byte offsets.
struct CodePoints {
  std::vector<uint32_t> cp;
  std::vector<CharClass> cls;
  std::vector<size_t> offset;  // size n + 1
  size_t n() const { return cp.size(); }
  bool Is(size_t i, CharClass c) const { return i < n() && cls[i] == c; }
  bool IsNewline(size_t i) const { return i < n() && (cp[i] == '\r' || cp[i] == '\n'); }
  size_t RunOf(size_t i, CharClass c) const {
    while (i < n() && cls[i] == c) ++i;
    return i;
  }
};

uint32_t Lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// 's 't 're 've 'm 'll 'd at i: the match length in code points, or 0.
size_t Contraction(const CodePoints& t, size_t i, bool ignore_case) {
  if (t.cp[i] != '\'' || i + 1 >= t.n()) return 0;
  auto at = [&](size_t k) { return ignore_case ? Lower(t.cp[k]) : t.cp[k]; };
  const uint32_t a = at(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= t.n()) return 0;
  const uint32_t b = at(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// \s+(?!\S) then \s+ at a whitespace code point i: the end of the match.
size_t WhitespaceRun(const CodePoints& t, size_t i) {
  const size_t j = t.RunOf(i, CharClass::kWhitespace);
  if (j == t.n() || j - i == 1) return j;  // to the end, or a single \s (second alternative)
  return j - 1;                            // leave the last one to lead the next piece
}

size_t MatchGpt2(const CodePoints& t, size_t i) {
  if (size_t c = Contraction(t, i, false)) return i + c;
  const bool space = t.cp[i] == ' ';
  for (CharClass c : {CharClass::kLetter, CharClass::kNumber, CharClass::kOther}) {
    if (space && t.Is(i + 1, c)) return t.RunOf(i + 1, c);
    if (t.Is(i, c)) return t.RunOf(i, c);
  }
  return WhitespaceRun(t, i);
}

size_t MatchLlama3(const CodePoints& t, size_t i) {
  if (size_t c = Contraction(t, i, true)) return i + c;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (!t.IsNewline(i) && !t.Is(i, CharClass::kLetter) && !t.Is(i, CharClass::kNumber) &&
      t.Is(i + 1, CharClass::kLetter)) {
    return t.RunOf(i + 1, CharClass::kLetter);
  }
  if (t.Is(i, CharClass::kLetter)) return t.RunOf(i, CharClass::kLetter);
  // \p{N}{1,3}
  if (t.Is(i, CharClass::kNumber)) return std::min(t.RunOf(i, CharClass::kNumber), i + 3);
  // ' '?[^\s\p{L}\p{N}]+[\r\n]*
  const size_t k = t.cp[i] == ' ' && t.Is(i + 1, CharClass::kOther) ? i + 1 : i;
  if (t.Is(k, CharClass::kOther)) {
    size_t j = t.RunOf(k, CharClass::kOther);
    while (t.IsNewline(j)) ++j;
    return j;
  }
  // \s*[\r\n]+: up to the last newline of the whitespace run.
  const size_t run = t.RunOf(i, CharClass::kWhitespace);
  for (size_t j = run; j > i; --j) {
    if (t.IsNewline(j - 1)) return j;
  }
  return WhitespaceRun(t, i);
}

}  // namespace

void PreTokenize(absl::string_view text, SplitPattern pattern, std::vector<Piece>* pieces) {
  pieces->clear();
  CodePoints t;
  t.cp.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t len;
    const uint32_t cp = unicode::DecodeUtf8(text.data(), text.size(), i, &len);
    t.cp.push_back(cp);
    t.cls.push_back(unicode::Classify(cp));
    t.offset.push_back(i);
    i += len;
  }
  t.offset.push_back(text.size());
  for (size_t i = 0; i < t.n();) {
    const size_t j = pattern == SplitPattern::kGpt2 ? MatchGpt2(t, i) : MatchLlama3(t, i);
    pieces->push_back({t.offset[i], t.offset[j]});
    i = j;
  }
}

}  // namespace loom::data
