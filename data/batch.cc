#include "data/batch.h"

#include <algorithm>
#include <numeric>

#include "runtime/philox.h"

namespace loom::data {

Batch Collate(const std::vector<const Example*>& rows, int32_t pad_id, int64_t pad_to_multiple) {
  LOOM_CHECK(!rows.empty(), "Collate: no rows");
  LOOM_CHECK(pad_to_multiple >= 1, "Collate: pad_to_multiple must be >= 1, got %d",
             pad_to_multiple);
  int64_t t = 0;
  for (const Example* e : rows) t = std::max<int64_t>(t, int64_t(e->input_ids.size()));
  t = (t + pad_to_multiple - 1) / pad_to_multiple * pad_to_multiple;
  const int64_t b = int64_t(rows.size());
  std::vector<int64_t> ids(size_t(b * t), pad_id), targets(size_t(b * t), kIgnoreIndex),
      positions(size_t(b * t));
  Batch batch;
  for (int64_t r = 0; r < b; ++r) {
    const Example& e = *rows[size_t(r)];
    LOOM_CHECK(e.labels.size() == e.input_ids.size(), "Collate: %d labels for %d ids",
               e.labels.size(), e.input_ids.size());
    const int64_t n = int64_t(e.input_ids.size());
    for (int64_t i = 0; i < n; ++i) ids[size_t(r * t + i)] = e.input_ids[size_t(i)];
    // The target of token i is the label of token i + 1.
    for (int64_t i = 0; i + 1 < n; ++i) {
      targets[size_t(r * t + i)] = e.labels[size_t(i + 1)];
      batch.num_trainable_tokens += e.labels[size_t(i + 1)] != kIgnoreIndex;
    }
    std::iota(positions.begin() + r * t, positions.begin() + (r + 1) * t, int64_t(0));
    batch.num_tokens += n;
  }
  batch.input_ids = Tensor::FromVector(ids, {b, t});
  batch.targets = Tensor::FromVector(targets, {b, t});
  batch.position_ids = Tensor::FromVector(positions, {b, t});
  return batch;
}

std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(size_t(std::max<int64_t>(n, 0)));
  std::iota(order.begin(), order.end(), int64_t(0));
  // Fisher-Yates; draw i takes 64 random bits from Philox counter
  // (epoch << 40) + i, so the order depends on (seed, epoch) alone.
  for (int64_t i = n - 1; i > 0; --i) {
    const philox::Block r = philox::Generate(seed, (uint64_t(epoch) << 40) + uint64_t(i));
    const uint64_t bits = (uint64_t(r.x[0]) << 32) | r.x[1];
    std::swap(order[size_t(i)], order[size_t(bits % uint64_t(i + 1))]);
  }
  return order;
}

}  // namespace loom::data
