#include "data/dataset.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/batch.h"
#include "data/jsonl_reader.h"
#include "data/prompt_formats.h"
#include "runtime/parallel.h"
#include "runtime/status.h"

namespace loom::data {

absl::StatusOr<std::vector<Example>> LoadDataset(const DatasetSpec& spec,
                                                 const Tokenizer& tokenizer,
                                                 const TokenizeOptions& options,
                                                 DatasetStats* stats) {
  DatasetStats local;
  DatasetStats& s = stats != nullptr ? *stats : local;
  s = DatasetStats();
  const auto& types = RowTypes();
  if (std::find(types.begin(), types.end(), spec.type) == types.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec.path, ": unknown dataset type '", spec.type,
        "' (completion, pretokenized, alpaca, chat_template, or a custom format map)"));
  }
  if (spec.type == "custom" && (!spec.format.has_value() || spec.format->format.empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.path, ": a custom dataset type needs a 'format' template"));
  }
  static const std::vector<std::string> kStrategies = {"drop", "truncate", "raise"};
  if (std::find(kStrategies.begin(), kStrategies.end(), options.excess_length_strategy) ==
      kStrategies.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("excess_length_strategy must be drop, truncate or raise, got '",
                     options.excess_length_strategy, "'"));
  }
  std::optional<ChatTemplate> chat;
  std::vector<Example> out;
  std::string type = spec.type;
  std::string current_file;
  // Rows are formatted (tokenized) in parallel in batches, then filtered and
  // counted in row order, so the result and the first error reported do not
  // depend on the thread count.
  struct Pending {
    nlohmann::json row;
    RowLocation at;
    std::string type;
  };
  std::vector<Pending> batch;
  auto flush = [&]() -> absl::Status {
    std::vector<Example> formatted(batch.size());
    std::vector<absl::Status> errors(batch.size());
    ParallelFor(int64_t(batch.size()), 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const Pending& p = batch[size_t(i)];
        absl::StatusOr<Example> e = FormatRow(p.row, spec, p.type, tokenizer, options, p.at, chat);
        if (e.ok()) {
          formatted[size_t(i)] = *std::move(e);
        } else {
          errors[size_t(i)] = e.status();
        }
      }
    });
    for (size_t i = 0; i < batch.size(); ++i) {
      LOOM_RETURN_IF_ERROR(errors[i]);
      Example& e = formatted[i];
      const RowLocation& at = batch[i].at;
      const int64_t len = int64_t(e.input_ids.size());
      if (len > options.sequence_len) {
        if (options.excess_length_strategy == "raise") {
          return at.Error(absl::StrFormat(
              "the row has %d tokens, more than sequence_len %d (excess_length_strategy: raise)",
              len, options.sequence_len));
        }
        if (options.excess_length_strategy == "drop") {
          ++s.dropped_too_long;
          continue;
        }
        e.input_ids.resize(size_t(options.sequence_len));
        e.labels.resize(size_t(options.sequence_len));
        e.prompt_len = std::min(e.prompt_len, options.sequence_len);
        ++s.truncated;
      }
      if (int64_t(e.input_ids.size()) < options.min_sample_len) {
        ++s.dropped_too_short;
        continue;
      }
      // Trainable = a label on some token after the first (the first token
      // is never predicted).
      int64_t trainable = 0;
      for (size_t k = 1; k < e.labels.size(); ++k) trainable += e.labels[k] != kIgnoreIndex;
      if (trainable == 0) {
        ++s.dropped_untrained;
        continue;
      }
      ++s.kept;
      s.tokens += int64_t(e.input_ids.size());
      s.trainable_tokens += trainable;
      out.push_back(std::move(e));
    }
    batch.clear();
    return absl::OkStatus();
  };
  auto on_row = [&](const nlohmann::json& row, const RowLocation& at) -> absl::Status {
    ++s.rows;
    if (at.file != current_file) {  // each file of a folder infers its own type
      current_file = at.file;
      if (spec.type.empty()) type.clear();
    }
    if (type.empty()) {
      LOOM_ASSIGN_OR_RETURN(type, InferRowType(row, at));
    }
    if (type != "pretokenized" && options.vocab_size > 0 &&
        options.vocab_size < tokenizer.vocab_size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: %s rows need the tokenizer's %d ids, but the model's vocab_size is %d "
          "(use pretokenized rows, or a model with a larger vocabulary)",
          at.file, type, tokenizer.vocab_size(), options.vocab_size));
    }
    if (type == "chat_template" && !chat.has_value()) {
      const std::string& name =
          spec.chat_template.empty() ? options.chat_template : spec.chat_template;
      absl::StatusOr<ChatTemplate> t = ResolveChatTemplate(name, tokenizer);
      if (!t.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(spec.path, ": ", t.status().message()));
      }
      chat = *t;
    }
    batch.push_back({row, at, type});
    if (batch.size() >= 4096) return flush();
    return absl::OkStatus();
  };
  LOOM_RETURN_IF_ERROR(ForEachRow(spec.path, on_row));
  LOOM_RETURN_IF_ERROR(flush());
  if (s.rows == 0) return absl::InvalidArgumentError(absl::StrCat(spec.path, ": no rows"));
  return out;
}

absl::StatusOr<TrainValSplit> ShuffleAndSplit(std::vector<Example> examples, double val_set_size,
                                              uint64_t seed) {
  const int64_t n = int64_t(examples.size());
  if (!(val_set_size >= 0) || (val_set_size >= 1 && val_set_size != std::floor(val_set_size))) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "val_set_size must be a fraction in [0, 1) or a whole number of rows, got %g",
        val_set_size));
  }
  const int64_t val =
      val_set_size >= 1 ? int64_t(val_set_size) : int64_t(std::ceil(val_set_size * double(n)));
  if (val >= n && val > 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("val_set_size %g takes %d of the %d rows and leaves none to train on",
                        val_set_size, val, n));
  }
  // Epoch -1 keeps this shuffle apart from every training epoch's order.
  const std::vector<int64_t> order = EpochOrder(n, seed, -1);
  TrainValSplit split;
  split.train.reserve(size_t(n - val));
  split.val.reserve(size_t(val));
  for (int64_t i = 0; i < n; ++i) {
    (i < n - val ? split.train : split.val)
        .push_back(std::move(examples[size_t(order[size_t(i)])]));
  }
  return split;
}

}  // namespace loom::data
