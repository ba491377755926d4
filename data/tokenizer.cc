#include "data/tokenizer.h"

namespace loom::data {

std::vector<int32_t> ByteTokenizer::Encode(absl::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (unsigned char c : text) ids.push_back(int32_t(c));
  return ids;
}

std::vector<int32_t> ByteTokenizer::EncodeWithOffsets(
    absl::string_view text, std::vector<std::pair<size_t, size_t>>* offsets) const {
  offsets->clear();
  for (size_t i = 0; i < text.size(); ++i) offsets->emplace_back(i, i + 1);
  return Encode(text);
}

std::string ByteTokenizer::Decode(absl::Span<const int32_t> ids) const {
  std::string text;
  for (int32_t id : ids) {
    if (id >= 0 && id < 256) text += char(id);
  }
  return text;
}

std::optional<int32_t> ByteTokenizer::TokenId(absl::string_view token) const {
  if (token.size() == 1) return int32_t(static_cast<unsigned char>(token[0]));
  return std::nullopt;
}

}  // namespace loom::data
