#include "data/jsonl_reader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/status.h"

namespace loom::data {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

bool IsDataFile(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".jsonl" || ext == ".json";
}

absl::Status ParseAndCall(absl::string_view text, const RowLocation& at, const RowFn& fn) {
  json row = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (row.is_discarded()) return at.Error("not valid JSON");
  if (!row.is_object()) return at.Error("each row must be a JSON object");
  return fn(row, at);
}

// A .json file holding one array: each top-level element is parsed on its
// own so its line is known.
absl::Status ForEachArrayElement(const std::string& file, const std::string& text, size_t open,
                                 const RowFn& fn) {
  int64_t line = 1 + std::count(text.begin(), text.begin() + int64_t(open), '\n');
  int depth = 0;
  bool in_string = false, escape = false;
  size_t start = std::string::npos;
  int64_t start_line = line;
  for (size_t i = open + 1; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (start == std::string::npos && c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != ',' &&
        c != ']') {
      start = i;
      start_line = line;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || (c == ']' && depth > 0)) {
      --depth;
    }
    if (depth == 0 && start != std::string::npos && (c == ',' || c == ']' || c == '}')) {
      const size_t end = c == '}' ? i + 1 : i;
      LOOM_RETURN_IF_ERROR(
          ParseAndCall(absl::string_view(text).substr(start, end - start), {file, start_line}, fn));
      start = std::string::npos;
    }
    if (depth == 0 && c == ']' && start == std::string::npos) {
      if (text.find_first_not_of(" \t\r\n", i + 1) != std::string::npos) {
        return RowLocation{file, line}.Error("unexpected text after the JSON array");
      }
      return absl::OkStatus();
    }
  }
  return RowLocation{file, line}.Error("the JSON array is not closed");
}

absl::Status ForEachRowOfFile(const std::string& file, const RowFn& fn) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(file, ": cannot open dataset file"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    return ForEachArrayElement(file, text, first, fn);
  }
  int64_t line = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    const absl::string_view row = absl::string_view(text).substr(pos, end - pos);
    if (row.find_first_not_of(" \t\r") != absl::string_view::npos) {
      LOOM_RETURN_IF_ERROR(ParseAndCall(row, {file, line}, fn));
    }
    pos = end + 1;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RowLocation::Error(const std::string& what) const {
  return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ": ", what));
}

absl::StatusOr<std::vector<std::string>> ListDataFiles(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return std::vector<std::string>{path};
  if (!fs::is_directory(path, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open dataset file"));
  }
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    if (entry.is_regular_file() && IsDataFile(entry.path())) files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": folder has no .json or .jsonl dataset files"));
  }
  return files;
}

absl::Status ForEachRow(const std::string& path, const RowFn& fn) {
  LOOM_ASSIGN_OR_RETURN(std::vector<std::string> files, ListDataFiles(path));
  for (const std::string& f : files) LOOM_RETURN_IF_ERROR(ForEachRowOfFile(f, fn));
  return absl::OkStatus();
}

}  // namespace loom::data
