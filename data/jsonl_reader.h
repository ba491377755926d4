// Rows of local JSON datasets: .jsonl files (one object per line), .json
// files (a JSON array of objects, or JSON lines), and folders of them (every
// .json / .jsonl file inside, in name order).
//
//   LOOM_RETURN_IF_ERROR(ForEachRow("data/train.jsonl",
//       [&](const nlohmann::json& row, const RowLocation& at) -> absl::Status {
//         if (!row.contains("text")) return at.Error("missing field 'text'");
//         ...
//       }));
//
// Every row carries its file and line, so errors read "file:line: what".
#ifndef LOOM_DATA_JSONL_READER_H_
#define LOOM_DATA_JSONL_READER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace loom::data {

struct RowLocation {
  std::string file;
  int64_t line = 0;  // 1-based line where the row starts
  absl::Status Error(const std::string& what) const;
};

// The data files of `path` (itself if a file), sorted. Errors: missing
// path, a folder with no .json / .jsonl file.
absl::StatusOr<std::vector<std::string>> ListDataFiles(const std::string& path);

using RowFn = std::function<absl::Status(const nlohmann::json& row, const RowLocation& at)>;

// Calls `fn` for every row of every data file of `path`, stopping at the
// first error. Rows must be JSON objects; blank lines are skipped.
absl::Status ForEachRow(const std::string& path, const RowFn& fn);

}  // namespace loom::data

#endif  // LOOM_DATA_JSONL_READER_H_
