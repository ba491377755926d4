#include "data/collators.h"

#include <algorithm>
#include <numeric>

#include "runtime/status.h"

namespace loom::data {
namespace {

int64_t RoundUp(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// Fills targets (labels shifted left by one within each row) and the count.
void ShiftTargets(const std::vector<int64_t>& labels, int64_t b, int64_t t,
                  std::vector<int64_t>* targets, int64_t* trainable) {
  targets->assign(size_t(b * t), kIgnoreIndex);
  *trainable = 0;
  for (int64_t r = 0; r < b; ++r) {
    for (int64_t i = 0; i + 1 < t; ++i) {
      const int64_t next = labels[size_t(r * t + i + 1)];
      (*targets)[size_t(r * t + i)] = next;
      *trainable += next != kIgnoreIndex;
    }
  }
}

}  // namespace

Batch Collate(const std::vector<const Example*>& rows, int32_t pad_id, int64_t pad_to_multiple) {
  LOOM_CHECK(!rows.empty(), "Collate: no rows");
  LOOM_CHECK(pad_to_multiple >= 1, "Collate: pad_to_multiple must be >= 1, got %d",
             pad_to_multiple);
  int64_t t = 1;
  for (const Example* e : rows) t = std::max<int64_t>(t, int64_t(e->input_ids.size()));
  t = RoundUp(t, pad_to_multiple);
  const int64_t b = int64_t(rows.size());
  std::vector<int64_t> ids(size_t(b * t), pad_id), labels(size_t(b * t), kIgnoreIndex),
      positions(size_t(b * t)), mask(size_t(b * t), 0), targets;
  Batch batch;
  for (int64_t r = 0; r < b; ++r) {
    const Example& e = *rows[size_t(r)];
    LOOM_CHECK(e.labels.size() == e.input_ids.size(), "Collate: %d labels for %d ids",
               e.labels.size(), e.input_ids.size());
    const int64_t n = int64_t(e.input_ids.size());
    for (int64_t i = 0; i < n; ++i) {
      ids[size_t(r * t + i)] = e.input_ids[size_t(i)];
      labels[size_t(r * t + i)] = i == 0 ? kIgnoreIndex : e.labels[size_t(i)];
      mask[size_t(r * t + i)] = 1;
    }
    // Padding continues the count, so it never looks like a new sequence.
    std::iota(positions.begin() + r * t, positions.begin() + (r + 1) * t, int64_t(0));
    batch.num_tokens += n;
  }
  ShiftTargets(labels, b, t, &targets, &batch.num_trainable_tokens);
  batch.input_ids = Tensor::FromVector(ids, {b, t});
  batch.labels = Tensor::FromVector(labels, {b, t});
  batch.targets = Tensor::FromVector(targets, {b, t});
  batch.position_ids = Tensor::FromVector(positions, {b, t});
  batch.attention_mask = Tensor::FromVector(mask, {b, t});
  batch.max_seqlen = t;
  return batch;
}

Batch CollatePacked(const std::vector<std::vector<const Example*>>& bins,
                    const PackedCollateOptions& options) {
  LOOM_CHECK(!bins.empty(), "CollatePacked: no bins");
  LOOM_CHECK(options.pad_to_multiple >= 1, "CollatePacked: pad_to_multiple must be >= 1, got %d",
             options.pad_to_multiple);
  int64_t t = 1;
  for (const auto& bin : bins) {
    int64_t n = 0;
    for (const Example* e : bin) n += int64_t(e->input_ids.size());
    t = std::max(t, n);
  }
  t = RoundUp(t, options.pad_to_multiple);
  const int64_t b = int64_t(bins.size());
  std::vector<int64_t> ids(size_t(b * t), options.pad_id), labels(size_t(b * t), kIgnoreIndex),
      positions(size_t(b * t), 0), mask(size_t(b * t), 0), targets;
  std::vector<int32_t> cu = {0};
  Batch batch;
  for (int64_t r = 0; r < b; ++r) {
    int64_t at = r * t;
    int64_t sample = 0;
    for (const Example* e : bins[size_t(r)]) {
      LOOM_CHECK(e->labels.size() == e->input_ids.size(), "CollatePacked: %d labels for %d ids",
                 e->labels.size(), e->input_ids.size());
      const int64_t n = int64_t(e->input_ids.size());
      ++sample;
      for (int64_t i = 0; i < n; ++i, ++at) {
        ids[size_t(at)] = e->input_ids[size_t(i)];
        labels[size_t(at)] = i == 0 ? kIgnoreIndex : e->labels[size_t(i)];
        positions[size_t(at)] = i;
        mask[size_t(at)] = options.kind == PackedCollator::kV2 ? sample : 1;
      }
      if (n > 0) cu.push_back(int32_t(at));
      batch.max_seqlen = std::max(batch.max_seqlen, n);
      batch.num_tokens += n;
    }
    // Padding: positions 0, 1, 2, ... as Axolotl; its own segment.
    const int64_t row_end = (r + 1) * t;
    for (int64_t i = 0; at + i < row_end; ++i) positions[size_t(at + i)] = i;
    if (at < row_end) {
      batch.max_seqlen = std::max(batch.max_seqlen, row_end - at);
      cu.push_back(int32_t(row_end));
    }
  }
  ShiftTargets(labels, b, t, &targets, &batch.num_trainable_tokens);
  batch.input_ids = Tensor::FromVector(ids, {b, t});
  batch.labels = Tensor::FromVector(labels, {b, t});
  batch.targets = Tensor::FromVector(targets, {b, t});
  batch.position_ids = Tensor::FromVector(positions, {b, t});
  batch.attention_mask = Tensor::FromVector(mask, {b, t});
  batch.cu_seqlens = Tensor::FromVector(cu, {int64_t(cu.size())});
  return batch;
}

int64_t PadMultiple(bool pad_to_sequence_len, int64_t pad_to_multiple_of, int64_t sequence_len) {
  const int64_t m = pad_to_multiple_of > 0 ? pad_to_multiple_of : 64;
  if (pad_to_sequence_len) return RoundUp(sequence_len, m);
  return pad_to_multiple_of > 0 ? pad_to_multiple_of : 1;
}

}  // namespace loom::data
