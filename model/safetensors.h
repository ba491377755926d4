// safetensors: the Hugging Face weight format, read and written with every
// field bounds-checked.
//
//   LOOM_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::Open("model.safetensors"));
//   for (const auto& [name, info] : f.tensors()) ...
//   LOOM_ASSIGN_OR_RETURN(Tensor w, f.Read("model.embed_tokens.weight"));
//   LOOM_RETURN_IF_ERROR(WriteSafetensors("out.safetensors", {{"w", w}}, {}));
//
// Layout: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"k": "v"}}, then the data buffer; offsets are relative to
// the buffer. A file is rejected (with its path and the offending tensor or
// field) when: it is shorter than 8 bytes; N is larger than the file or than
// 100 MB; the header is not a JSON object; a tensor lacks dtype/shape/
// data_offsets or has fields of the wrong JSON type; the dtype is unknown;
// a dimension is negative; the element count overflows; end < begin; the
// byte range does not equal numel * element size; a range reaches past the
// end of the file; two tensors' ranges overlap; or a name repeats.
#ifndef LOOM_MODEL_SAFETENSORS_H_
#define LOOM_MODEL_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/tensor.h"

namespace loom {

// One tensor's header entry.
struct SafetensorsEntry {
  DType dtype;
  Dims shape;
  uint64_t begin = 0;  // byte offsets into the data buffer
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Reads and validates the header of the file at `path` (the data stays on
  // disk until Read).
  static absl::StatusOr<SafetensorsFile> Open(const std::string& path);
  // Validates an in-memory image of a whole file (the fuzz target's entry).
  // `source` names it in errors.
  static absl::StatusOr<SafetensorsFile> Parse(std::string bytes, std::string source);

  const std::string& path() const { return path_; }
  // Entries by tensor name (sorted).
  const std::map<std::string, SafetensorsEntry>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool Contains(const std::string& name) const { return tensors_.count(name) > 0; }
  // A new CPU tensor holding the named tensor's data (NotFound if absent).
  absl::StatusOr<Tensor> Read(const std::string& name) const;

 private:
  std::string path_;
  std::map<std::string, SafetensorsEntry> tensors_;
  std::map<std::string, std::string> metadata_;
  uint64_t data_start_ = 0;                   // byte offset of the data buffer in the file
  std::shared_ptr<const std::string> bytes_;  // set by Parse; Open reads lazily
};

// Writes `tensors` (any device; copied to the host) in the given order, data
// contiguous, 8-byte aligned header as the reference writer pads it. The file
// is written to `path`.tmp and renamed, so a failed write never leaves a
// partial file at `path`. Names must be unique.
absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata);

// Safetensors dtype names ("F32", "BF16", "F16", "F64", "I32", "I64", "BOOL").
absl::StatusOr<DType> DTypeFromSafetensorsName(const std::string& name);
const char* SafetensorsDTypeName(DType dtype);

}  // namespace loom

#endif  // LOOM_MODEL_SAFETENSORS_H_
