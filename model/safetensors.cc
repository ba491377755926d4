#include "model/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "runtime/ops/shape.h"

namespace loom {
namespace {

using json = nlohmann::json;

// Larger headers are refused before allocating for them (the reference
// implementation uses the same limit).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

absl::Status Corrupt(const std::string& source, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": not a valid safetensors file: ", what));
}

uint64_t ReadLittleEndian64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Validates one tensor entry of the header.
absl::StatusOr<SafetensorsEntry> ParseEntry(const std::string& source, const std::string& name,
                                            const json& j) {
  const std::string where = absl::StrCat("tensor '", name, "'");
  if (!j.is_object()) return Corrupt(source, absl::StrCat(where, " is not a JSON object"));
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!j.contains(key)) return Corrupt(source, absl::StrCat(where, " has no '", key, "'"));
  }
  if (!j["dtype"].is_string())
    return Corrupt(source, absl::StrCat(where, ": 'dtype' must be a string"));
  SafetensorsEntry e;
  absl::StatusOr<DType> dtype = DTypeFromSafetensorsName(j["dtype"].get<std::string>());
  if (!dtype.ok()) return Corrupt(source, absl::StrCat(where, ": ", dtype.status().message()));
  e.dtype = *dtype;
  if (!j["shape"].is_array())
    return Corrupt(source, absl::StrCat(where, ": 'shape' must be a list"));
  uint64_t numel = 1;
  for (const json& d : j["shape"]) {
    if (!d.is_number_integer()) {
      return Corrupt(source,
                     absl::StrCat(where, ": 'shape' entries must be integers, got ", d.dump()));
    }
    if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0) {
      return Corrupt(source, absl::StrCat(where, ": negative dimension ", d.dump()));
    }
    const uint64_t v = d.get<uint64_t>();
    if (v > uint64_t(std::numeric_limits<int64_t>::max()) ||
        (v != 0 && numel > std::numeric_limits<uint64_t>::max() / 16 / v)) {
      return Corrupt(source, absl::StrCat(where, ": shape ", j["shape"].dump(), " is too large"));
    }
    numel *= v;
    e.shape.push_back(int64_t(v));
  }
  const json& off = j["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned()) {
    return Corrupt(source, absl::StrCat(where,
                                        ": 'data_offsets' must be [begin, end] with non-negative "
                                        "integers, got ",
                                        off.dump()));
  }
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.end < e.begin) {
    return Corrupt(source,
                   absl::StrFormat("%s: data_offsets end %d < begin %d", where, e.end, e.begin));
  }
  const uint64_t expected = numel * SizeOf(e.dtype);
  if (e.end - e.begin != expected) {
    return Corrupt(source, absl::StrFormat("%s: %d bytes in data_offsets, but %s %s needs %d",
                                           where, e.end - e.begin, DTypeName(e.dtype),
                                           DimsString(e.shape), expected));
  }
  return e;
}

// Parses and checks the JSON header against a data buffer of `data_bytes`.
absl::Status ParseHeader(const std::string& source, const std::string& header, uint64_t data_bytes,
                         std::map<std::string, SafetensorsEntry>* tensors,
                         std::map<std::string, std::string>* metadata) {
  // Duplicate names: nlohmann keeps the last silently; a parser callback sees
  // each key of the top-level object (depth 1) as it is read.
  std::string duplicate;
  std::set<std::string> names;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string() &&
        !names.insert(parsed.get<std::string>()).second && duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json j = json::parse(header, callback, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Corrupt(source, "the header is not valid JSON");
  if (!j.is_object()) return Corrupt(source, "the header is not a JSON object");
  if (!duplicate.empty())
    return Corrupt(source, absl::StrCat("tensor '", duplicate, "' appears twice"));
  std::vector<std::pair<uint64_t, std::string>> ranges;
  for (const auto& [name, value] : j.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) return Corrupt(source, "'__metadata__' must be an object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) {
          return Corrupt(source,
                         absl::StrCat("metadata '", k, "' must be a string, got ", v.dump()));
        }
        (*metadata)[k] = v.get<std::string>();
      }
      continue;
    }
    LOOM_ASSIGN_OR_RETURN(SafetensorsEntry e, ParseEntry(source, name, value));
    if (e.end > data_bytes) {
      return Corrupt(source, absl::StrFormat("tensor '%s' ends at byte %d of a %d-byte data buffer "
                                             "(truncated file?)",
                                             name, e.end, data_bytes));
    }
    if (e.end > e.begin) ranges.emplace_back(e.begin, name);
    (*tensors)[name] = e;
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    const SafetensorsEntry& prev = (*tensors)[ranges[i - 1].second];
    if (ranges[i].first < prev.end) {
      return Corrupt(source, absl::StrCat("tensors '", ranges[i - 1].second, "' and '",
                                          ranges[i].second, "' overlap"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DType> DTypeFromSafetensorsName(const std::string& name) {
  if (name == "F32") return DType::kF32;
  if (name == "F64") return DType::kF64;
  if (name == "BF16") return DType::kBF16;
  if (name == "F16") return DType::kF16;
  if (name == "I32") return DType::kI32;
  if (name == "I64") return DType::kI64;
  if (name == "BOOL") return DType::kBool;
  return absl::InvalidArgumentError(
      absl::StrCat("dtype '", name, "' is not supported (F32, F64, BF16, F16, I32, I64, BOOL)"));
}

const char* SafetensorsDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF64:
      return "F64";
    case DType::kBF16:
      return "BF16";
    case DType::kF16:
      return "F16";
    case DType::kI32:
      return "I32";
    case DType::kI64:
      return "I64";
    case DType::kBool:
      return "BOOL";
  }
  return "?";
}

absl::StatusOr<SafetensorsFile> SafetensorsFile::Parse(std::string bytes, std::string source) {
  if (bytes.size() < 8) {
    return Corrupt(
        source, absl::StrFormat("%d bytes, shorter than the 8-byte header length", bytes.size()));
  }
  const uint64_t n = ReadLittleEndian64(reinterpret_cast<const unsigned char*>(bytes.data()));
  if (n > kMaxHeaderBytes || n > bytes.size() - 8) {
    return Corrupt(source, absl::StrFormat("header length %d exceeds the %d bytes after it", n,
                                           bytes.size() - 8));
  }
  SafetensorsFile f;
  f.path_ = std::move(source);
  f.data_start_ = 8 + n;
  LOOM_RETURN_IF_ERROR(ParseHeader(f.path_, bytes.substr(8, n), bytes.size() - f.data_start_,
                                   &f.tensors_, &f.metadata_));
  f.bytes_ = std::make_shared<const std::string>(std::move(bytes));
  return f;
}

absl::StatusOr<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  const uint64_t size = uint64_t(in.tellg());
  in.seekg(0);
  unsigned char len[8];
  if (size < 8 || !in.read(reinterpret_cast<char*>(len), 8)) {
    return Corrupt(path, absl::StrFormat("%d bytes, shorter than the 8-byte header length", size));
  }
  const uint64_t n = ReadLittleEndian64(len);
  if (n > kMaxHeaderBytes || n > size - 8) {
    return Corrupt(path,
                   absl::StrFormat("header length %d exceeds the %d bytes after it", n, size - 8));
  }
  std::string header(n, '\0');
  if (!in.read(header.data(), std::streamsize(n))) return Corrupt(path, "cannot read the header");
  SafetensorsFile f;
  f.path_ = path;
  f.data_start_ = 8 + n;
  LOOM_RETURN_IF_ERROR(ParseHeader(path, header, size - f.data_start_, &f.tensors_, &f.metadata_));
  return f;
}

absl::StatusOr<Tensor> SafetensorsFile::Read(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return absl::NotFoundError(absl::StrCat(path_, ": no tensor '", name, "'"));
  }
  const SafetensorsEntry& e = it->second;
  Tensor t = Tensor::Empty(e.shape, e.dtype);
  const uint64_t nbytes = e.end - e.begin;
  if (nbytes == 0) return t;
  if (bytes_ != nullptr) {
    std::memcpy(t.raw_data(), bytes_->data() + data_start_ + e.begin, nbytes);
  } else {
    std::ifstream in(path_, std::ios::binary);
    in.seekg(std::streamoff(data_start_ + e.begin));
    if (!in || !in.read(static_cast<char*>(t.raw_data()), std::streamsize(nbytes))) {
      return absl::DataLossError(absl::StrCat(path_, ": cannot read tensor '", name,
                                              "' (file changed or truncated since opened?)"));
    }
  }
  if (e.dtype == DType::kBool) {
    // A bool byte other than 0 or 1 would be undefined behavior when read.
    unsigned char* p = static_cast<unsigned char*>(t.raw_data());
    for (uint64_t i = 0; i < nbytes; ++i) p[i] = p[i] != 0;
  }
  return t;
}

absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<std::pair<std::string, Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps our order: tensors as given, metadata first.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> host;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || header.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor name '", name, "' is reserved or repeated"));
    }
    Tensor t = tensor.Detach();
    if (t.device() != Device::CPU()) {
      LOOM_ASSIGN_OR_RETURN(t, t.CopyTo(Device::CPU()));
    }
    if (!t.is_contiguous()) t = Contiguous(t);
    std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    header[name] = {{"dtype", SafetensorsDTypeName(t.dtype())},
                    {"shape", shape},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
    host.push_back(t);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = (uint64_t(text.size()) >> (8 * i)) & 0xff;

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), std::streamsize(text.size()));
    for (const Tensor& t : host) {
      out.write(static_cast<const char*>(t.raw_data()), std::streamsize(t.nbytes()));
    }
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::InternalError(
          absl::StrCat(path, ": cannot write (disk full or no permission?)"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": cannot move ", tmp, " into place"));
  }
  return absl::OkStatus();
}

}  // namespace loom
