#include "data/prepared_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/hash.h"
#include "data/jsonl_reader.h"
#include "runtime/status.h"

namespace loom::data {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'L', 'O', 'O', 'M', 'P', 'R', 'E', 'P'};
constexpr uint32_t kVersion = 1;

void Put(std::string* out, const void* p, size_t n) {
  if (n > 0) out->append(static_cast<const char*>(p), n);
}
template <typename T>
void PutValue(std::string* out, T v) {
  Put(out, &v, sizeof(T));
}

// Reads a mapped file with bounds checks.
class Cursor {
 public:
  Cursor(const char* data, size_t size) : data_(data), size_(size) {}
  bool Take(void* out, size_t n) {
    if (n > size_ - pos_) return false;
    std::memcpy(out, data_ + pos_, n);
    pos_ += n;
    return true;
  }
  template <typename T>
  bool Value(T* v) {
    return Take(v, sizeof(T));
  }
  const char* Here() const { return data_ + pos_; }
  bool Skip(size_t n) {
    if (n > size_ - pos_) return false;
    pos_ += n;
    return true;
  }
  size_t pos() const { return pos_; }

 private:
  const char* data_;
  size_t size_, pos_ = 0;
};

class MappedFile {
 public:
  ~MappedFile() {
    if (data_ != nullptr) munmap(data_, size_);
  }
  absl::Status Open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": no prepared file"));
    struct stat st;
    if (fstat(fd, &st) != 0) {
      ::close(fd);
      return absl::DataLossError(absl::StrCat(path, ": cannot stat"));
    }
    size_ = size_t(st.st_size);
    if (size_ > 0) {
      void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        return absl::DataLossError(absl::StrCat(path, ": cannot mmap"));
      }
      data_ = static_cast<char*>(p);
    }
    ::close(fd);
    return absl::OkStatus();
  }
  const char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

const char* CacheOutcomeName(CacheOutcome o) {
  switch (o) {
    case CacheOutcome::kDisabled:
      return "off";
    case CacheOutcome::kHit:
      return "hit";
    case CacheOutcome::kMiss:
      return "miss";
    case CacheOutcome::kRebuiltCorrupt:
      return "corrupt, rebuilt";
  }
  return "?";
}

absl::StatusOr<std::string> PreparedCacheKey(const DatasetSpec& spec, const Tokenizer& tokenizer,
                                             const TokenizeOptions& options) {
  std::string key = absl::StrCat("loom prepared v", kVersion, "\n");
  LOOM_ASSIGN_OR_RETURN(std::vector<std::string> files, ListDataFiles(spec.path));
  for (const std::string& f : files) {
    LOOM_ASSIGN_OR_RETURN(uint64_t h, HashFile(f));
    absl::StrAppend(&key, "file ", f, " ", HexHash(h), "\n");
  }
  absl::StrAppend(&key, "type ", spec.type, "\nfield ", spec.field, "\n");
  if (spec.format.has_value()) {
    const PromptFormat& f = *spec.format;
    absl::StrAppend(
        &key, "format ",
        HexHash(Hash64(absl::StrJoin({f.field_instruction, f.field_input, f.field_output, f.format,
                                      f.no_input_format, f.system_prompt, f.system_format},
                                     std::string(1, '\0')))),
        "\n");
  }
  absl::StrAppend(&key, "field_messages ", spec.field_messages, "\nmappings");
  for (const auto& [k, v] : spec.message_property_mappings) absl::StrAppend(&key, " ", k, "=", v);
  absl::StrAppend(&key, "\nroles_to_train ", absl::StrJoin(spec.roles_to_train, ","),
                  "\ntrain_on_eos ", spec.train_on_eos, "\ndataset chat_template ",
                  spec.chat_template, "\ntokenizer ", tokenizer.Fingerprint(), "\nsequence_len ",
                  options.sequence_len, "\ntrain_on_inputs ", options.train_on_inputs,
                  "\nvocab_size ", options.vocab_size, "\nexcess_length_strategy ",
                  options.excess_length_strategy, "\nmin_sample_len ", options.min_sample_len,
                  "\nchat_template ", options.chat_template, "\n");
  return key;
}

absl::Status WritePreparedFile(const std::string& file, const std::string& key,
                               const std::vector<Example>& examples, const DatasetStats& stats) {
  std::string out;
  Put(&out, kMagic, 8);
  PutValue<uint32_t>(&out, kVersion);
  PutValue<uint32_t>(&out, 0);
  PutValue<uint64_t>(&out, key.size());
  out += key;
  uint64_t tokens = 0, answer_bytes = 0;
  for (const Example& e : examples) {
    tokens += e.input_ids.size();
    answer_bytes += e.answer.size();
  }
  PutValue<uint64_t>(&out, examples.size());
  PutValue<uint64_t>(&out, tokens);
  PutValue<uint64_t>(&out, answer_bytes);
  for (int64_t v :
       {stats.rows, stats.kept, stats.dropped_too_long, stats.truncated, stats.dropped_too_short,
        stats.dropped_untrained, stats.tokens, stats.trainable_tokens}) {
    PutValue<int64_t>(&out, v);
  }
  int64_t at = 0;
  PutValue<int64_t>(&out, 0);
  for (const Example& e : examples) PutValue<int64_t>(&out, at += int64_t(e.input_ids.size()));
  for (const Example& e : examples) PutValue<int64_t>(&out, e.prompt_len);
  at = 0;
  PutValue<int64_t>(&out, 0);
  for (const Example& e : examples) PutValue<int64_t>(&out, at += int64_t(e.answer.size()));
  for (const Example& e : examples) Put(&out, e.input_ids.data(), e.input_ids.size() * 4);
  for (const Example& e : examples) Put(&out, e.labels.data(), e.labels.size() * 4);
  for (const Example& e : examples) out += e.answer;
  PutValue<uint64_t>(&out, Hash64(out));

  std::error_code ec;
  fs::create_directories(fs::path(file).parent_path(), ec);
  const std::string tmp = absl::StrCat(file, ".tmp.", ::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(out.data(), std::streamsize(out.size()));
    f.flush();
    if (!f) {
      fs::remove(tmp, ec);
      return absl::InternalError(absl::StrCat(tmp, ": cannot write the prepared dataset"));
    }
  }
  if (const int fd = ::open(tmp.c_str(), O_RDONLY); fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  fs::rename(tmp, file, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return absl::InternalError(absl::StrCat(file, ": cannot rename into place: ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Example>> ReadPreparedFile(const std::string& file,
                                                      const std::string& key, DatasetStats* stats) {
  MappedFile m;
  LOOM_RETURN_IF_ERROR(m.Open(file));
  auto corrupt = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat(file, ": corrupt prepared dataset (", why, ")"));
  };
  if (m.size() < 16 + 8) return corrupt("too short");
  uint64_t checksum;
  std::memcpy(&checksum, m.data() + m.size() - 8, 8);
  if (Hash64(absl::string_view(m.data(), m.size() - 8)) != checksum) {
    return corrupt("checksum mismatch");
  }
  Cursor c(m.data(), m.size() - 8);
  char magic[8];
  uint32_t version, reserved;
  uint64_t key_len;
  if (!c.Take(magic, 8) || std::memcmp(magic, kMagic, 8) != 0) return corrupt("bad magic");
  if (!c.Value(&version) || version != kVersion || !c.Value(&reserved)) {
    return corrupt("unknown version");
  }
  if (!c.Value(&key_len) || key_len > m.size()) return corrupt("bad key length");
  const char* key_start = c.Here();
  if (!c.Skip(key_len)) return corrupt("bad key length");
  if (absl::string_view(key_start, key_len) != key)
    return absl::DataLossError(absl::StrCat(file, ": written for another key"));
  uint64_t n, tokens, answer_bytes;
  if (!c.Value(&n) || !c.Value(&tokens) || !c.Value(&answer_bytes)) return corrupt("header");
  int64_t s[8];
  if (!c.Take(s, sizeof(s))) return corrupt("stats");
  // Sizes must add up to exactly the rest of the file.
  const size_t want = (n + 1) * 8 + n * 8 + (n + 1) * 8 + tokens * 8 + answer_bytes;
  if (n > m.size() || tokens > m.size() || c.pos() + want != m.size() - 8) {
    return corrupt("sizes do not match the file");
  }
  std::vector<int64_t> offsets(n + 1), prompt(n), answer_offsets(n + 1);
  c.Take(offsets.data(), (n + 1) * 8);
  c.Take(prompt.data(), n * 8);
  c.Take(answer_offsets.data(), (n + 1) * 8);
  const char* ids = c.Here();
  const char* labels = ids + tokens * 4;
  const char* answers = labels + tokens * 4;
  std::vector<Example> out(n);
  for (uint64_t i = 0; i < n; ++i) {
    const int64_t lo = offsets[i], hi = offsets[i + 1];
    const int64_t alo = answer_offsets[i], ahi = answer_offsets[i + 1];
    if (lo < 0 || hi < lo || uint64_t(hi) > tokens || alo < 0 || ahi < alo ||
        uint64_t(ahi) > answer_bytes || prompt[i] < 0 || prompt[i] > hi - lo) {
      return corrupt("bad offsets");
    }
    Example& e = out[i];
    e.input_ids.resize(size_t(hi - lo));
    e.labels.resize(size_t(hi - lo));
    if (hi > lo) {  // memcpy into an empty vector's null data() is undefined
      std::memcpy(e.input_ids.data(), ids + lo * 4, size_t(hi - lo) * 4);
      std::memcpy(e.labels.data(), labels + lo * 4, size_t(hi - lo) * 4);
    }
    e.prompt_len = prompt[i];
    e.answer.assign(answers + alo, size_t(ahi - alo));
  }
  *stats = DatasetStats{s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]};
  return out;
}

absl::StatusOr<std::vector<Example>> LoadDatasetCached(
    const std::string& cache_dir, const DatasetSpec& spec, const Tokenizer& tokenizer,
    const TokenizeOptions& options, DatasetStats* stats, CacheOutcome* outcome, std::string* note) {
  if (cache_dir.empty()) {
    *outcome = CacheOutcome::kDisabled;
    return LoadDataset(spec, tokenizer, options, stats);
  }
  LOOM_ASSIGN_OR_RETURN(std::string key, PreparedCacheKey(spec, tokenizer, options));
  const std::string file = (fs::path(cache_dir) / (HexHash(Hash64(key)) + ".loomprep")).string();
  absl::StatusOr<std::vector<Example>> cached = ReadPreparedFile(file, key, stats);
  if (cached.ok()) {
    *outcome = CacheOutcome::kHit;
    return cached;
  }
  *outcome =
      absl::IsNotFound(cached.status()) ? CacheOutcome::kMiss : CacheOutcome::kRebuiltCorrupt;
  if (note != nullptr && *outcome == CacheOutcome::kRebuiltCorrupt) {
    *note = absl::StrCat(cached.status().message(), "; rebuilding it");
  }
  LOOM_ASSIGN_OR_RETURN(std::vector<Example> rows, LoadDataset(spec, tokenizer, options, stats));
  LOOM_RETURN_IF_ERROR(WritePreparedFile(file, key, rows, *stats));
  return rows;
}

}  // namespace loom::data
