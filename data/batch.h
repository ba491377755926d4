// Micro-batches: examples collated into padded tensors with next-token
// targets, and the per-epoch order in which examples are visited.
//
//   std::vector<int64_t> order = EpochOrder(train.size(), seed, epoch);
//   Batch b = Collate({&train[order[0]], &train[order[1]]}, tokenizer.pad_id());
//   Tensor loss_sum = CrossEntropy(model.Forward(b.input_ids, b.position_ids), b.targets,
//                                  Reduction::kSum);
#ifndef LOOM_DATA_BATCH_H_
#define LOOM_DATA_BATCH_H_

#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "runtime/tensor.h"

namespace loom::data {

struct Batch {
  Tensor input_ids;  // i64 [B, T], right-padded with the pad id
  // i64 [B, T]: the label of the *next* token (labels shifted left by one
  // here, before any later split of the sequence); -100 where the next token
  // is not trained, at each row's last position, and on padding.
  Tensor targets;
  Tensor position_ids;               // i64 [B, T]: 0..T-1 in every row (padding continues
                                     // the count, so it never looks like a new sequence)
  int64_t num_tokens = 0;            // real (non-pad) tokens
  int64_t num_trainable_tokens = 0;  // targets != -100
};

// Pads every row to the longest one (rounded up to `pad_to_multiple`).
Batch Collate(const std::vector<const Example*>& rows, int32_t pad_id, int64_t pad_to_multiple = 1);

// A permutation of [0, n): the same for the same (seed, epoch) on every
// machine and rank (Philox-based Fisher-Yates), different across epochs.
std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace loom::data

#endif  // LOOM_DATA_BATCH_H_
