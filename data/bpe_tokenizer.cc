#include "data/bpe_tokenizer.h"

#include <algorithm>
#include <queue>

#include "absl/strings/str_cat.h"
#include "data/unicode_tables.h"

namespace loom::data {
namespace {

// GPT-2's byte-level alphabet: byte b is written as code point kByteChar[b]
// (printable bytes as themselves, the rest shifted to 256 and up).
struct ByteAlphabet {
  uint32_t byte_char[256];
  absl::flat_hash_map<uint32_t, uint8_t> char_byte;
  ByteAlphabet() {
    bool printable[256] = {};
    for (int b = '!'; b <= '~'; ++b) printable[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      byte_char[b] = printable[b] ? uint32_t(b) : next++;
      char_byte[byte_char[b]] = uint8_t(b);
    }
  }
};

const ByteAlphabet& Alphabet() {
  static const ByteAlphabet* a = new ByteAlphabet();
  return *a;
}

// A vocabulary string (byte-level alphabet) to the raw bytes it stands for;
// false if it holds a character outside the alphabet.
bool ToBytes(absl::string_view token, std::string* out) {
  out->clear();
  for (size_t i = 0; i < token.size();) {
    size_t len;
    const uint32_t cp = unicode::DecodeUtf8(token.data(), token.size(), i, &len);
    auto it = Alphabet().char_byte.find(cp);
    if (it == Alphabet().char_byte.end()) return false;
    out->push_back(char(it->second));
    i += len;
  }
  return true;
}

uint64_t PairKey(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

BpeTokenizer::BpeTokenizer(const absl::flat_hash_map<std::string, int32_t>& vocab,
                           const std::vector<std::pair<std::string, std::string>>& merges,
                           std::vector<AddedToken> added, Rules rules)
    : rules_(std::move(rules)), added_(std::move(added)) {
  int32_t max_id = -1;
  for (const auto& [tok, id] : vocab) max_id = std::max(max_id, id);
  for (const AddedToken& a : added_) max_id = std::max(max_id, a.id);
  id_bytes_.resize(size_t(max_id + 1));
  id_special_.assign(size_t(max_id + 1), false);
  std::string raw;
  for (const auto& [tok, id] : vocab) {
    if (id < 0) {
      build_error_ = absl::StrCat("token '", tok, "' has a negative id");
      return;
    }
    if (ToBytes(tok, &raw)) {
      id_bytes_[size_t(id)] = raw;
      vocab_by_bytes_.emplace(raw, id);
    } else {
      id_bytes_[size_t(id)] = tok;  // not byte-level text; reachable only as an added token
    }
  }
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_by_bytes_.find(std::string(1, char(b)));
    if (it == vocab_by_bytes_.end()) {
      build_error_ = absl::StrCat("model.vocab has no token for byte ", b,
                                  " (a byte-level BPE needs all 256)");
      return;
    }
    byte_id_[b] = it->second;
  }
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = vocab.find(a), ib = vocab.find(b), im = vocab.find(a + b);
    if (ia == vocab.end() || ib == vocab.end() || im == vocab.end()) {
      build_error_ = absl::StrCat("model.merges[", rank, "] '", a, " ", b,
                                  "' names a token missing from model.vocab");
      return;
    }
    merges_.try_emplace(PairKey(ia->second, ib->second), int32_t(rank), im->second);
  }
  for (const AddedToken& a : added_) {
    if (a.content.empty()) {
      build_error_ = absl::StrCat("added token ", a.id, " has empty content");
      return;
    }
    id_bytes_[size_t(a.id)] = a.content;
    id_special_[size_t(a.id)] = a.special;
    added_first_byte_[static_cast<unsigned char>(a.content[0])] = true;
  }
  std::stable_sort(added_.begin(), added_.end(), [](const AddedToken& x, const AddedToken& y) {
    return x.content.size() > y.content.size();
  });
}

void BpeTokenizer::EncodeWord(absl::string_view word, std::vector<int32_t>* out) const {
  if (word.size() == 1) {
    out->push_back(byte_id_[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (rules_.ignore_merges) {
    if (auto it = vocab_by_bytes_.find(word); it != vocab_by_bytes_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  {
    absl::MutexLock lock(&cache_mu_);
    if (auto it = cache_.find(word); it != cache_.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  // Lowest-rank pair first (leftmost on ties), as Hugging Face's BPE.
  const int n = int(word.size());
  std::vector<int32_t> sym(static_cast<size_t>(n));
  std::vector<int> next(static_cast<size_t>(n)), prev(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    sym[size_t(i)] = byte_id_[static_cast<unsigned char>(word[size_t(i)])];
    next[size_t(i)] = i + 1 < n ? i + 1 : -1;
    prev[size_t(i)] = i - 1;
  }
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t left, right, merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto consider = [&](int pos) {
    const int q = next[size_t(pos)];
    if (q < 0) return;
    auto it = merges_.find(PairKey(sym[size_t(pos)], sym[size_t(q)]));
    if (it != merges_.end()) {
      heap.push({it->second.first, pos, sym[size_t(pos)], sym[size_t(q)], it->second.second});
    }
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  std::vector<bool> alive(size_t(n), true);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int q = next[size_t(c.pos)];
    if (!alive[size_t(c.pos)] || q < 0 || sym[size_t(c.pos)] != c.left ||
        sym[size_t(q)] != c.right) {
      continue;  // stale
    }
    sym[size_t(c.pos)] = c.merged;
    alive[size_t(q)] = false;
    next[size_t(c.pos)] = next[size_t(q)];
    if (next[size_t(q)] >= 0) prev[size_t(next[size_t(q)])] = c.pos;
    if (prev[size_t(c.pos)] >= 0) consider(prev[size_t(c.pos)]);
    consider(c.pos);
  }
  std::vector<int32_t> ids;
  for (int i = 0; i >= 0; i = next[size_t(i)]) ids.push_back(sym[size_t(i)]);
  out->insert(out->end(), ids.begin(), ids.end());
  if (word.size() > 256) return;  // long runs (whitespace, repeats) would bloat the cache
  absl::MutexLock lock(&cache_mu_);
  if (cache_.size() > 200000) cache_.clear();
  cache_.emplace(std::string(word), std::move(ids));
}

void BpeTokenizer::EncodePlain(absl::string_view text, size_t base, std::vector<int32_t>* ids,
                               std::vector<std::pair<size_t, size_t>>* offsets) const {
  if (text.empty()) return;
  std::string prefixed;
  size_t shift = 0;  // bytes added in front (add_prefix_space)
  if (rules_.add_prefix_space && text[0] != ' ') {
    prefixed = absl::StrCat(" ", text);
    text = prefixed;
    shift = 1;
  }
  std::vector<Piece> pieces;
  if (rules_.use_split) {
    PreTokenize(text, rules_.pattern, &pieces);
  } else {
    pieces.push_back({0, text.size()});
  }
  for (const Piece& p : pieces) {
    const size_t first = ids->size();
    EncodeWord(text.substr(p.begin, p.end - p.begin), ids);
    if (offsets == nullptr) continue;
    size_t at = p.begin;
    for (size_t k = first; k < ids->size(); ++k) {
      const size_t len = id_bytes_[size_t((*ids)[k])].size();
      const size_t lo = std::max(at, shift) - shift, hi = std::max(at + len, shift) - shift;
      offsets->emplace_back(base + lo, base + hi);
      at += len;
    }
  }
}

std::vector<int32_t> BpeTokenizer::EncodeWithOffsets(
    absl::string_view text, std::vector<std::pair<size_t, size_t>>* offsets) const {
  std::vector<int32_t> ids;
  if (offsets != nullptr) offsets->clear();
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    const AddedToken* match = nullptr;
    if (added_first_byte_[static_cast<unsigned char>(text[i])]) {
      for (const AddedToken& a : added_) {
        if (text.substr(i, a.content.size()) == a.content) {
          match = &a;
          break;
        }
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    size_t plain_end = i;
    if (match->lstrip) {
      while (plain_end > start && IsSpace(text[plain_end - 1])) --plain_end;
    }
    EncodePlain(text.substr(start, plain_end - start), start, &ids, offsets);
    ids.push_back(match->id);
    i += match->content.size();
    if (match->rstrip) {
      while (i < text.size() && IsSpace(text[i])) ++i;
    }
    // Like Hugging Face, the token's span includes the whitespace it strips.
    if (offsets != nullptr) offsets->emplace_back(plain_end, i);
    start = i;
  }
  EncodePlain(text.substr(start), start, &ids, offsets);
  return ids;
}

std::vector<int32_t> BpeTokenizer::Encode(absl::string_view text) const {
  return EncodeWithOffsets(text, nullptr);
}

std::string BpeTokenizer::Decode(absl::Span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= int32_t(id_bytes_.size()) || id_special_[size_t(id)]) continue;
    out += id_bytes_[size_t(id)];
  }
  return out;
}

std::optional<int32_t> BpeTokenizer::TokenId(absl::string_view token) const {
  for (const AddedToken& a : added_) {
    if (a.content == token) return a.id;
  }
  if (auto it = vocab_by_bytes_.find(token); it != vocab_by_bytes_.end()) return it->second;
  return std::nullopt;
}

}  // namespace loom::data
