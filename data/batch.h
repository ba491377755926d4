// Micro-batches as the model sees them, and the per-epoch order in which
// examples are visited. The collators that build a Batch are in
// data/collators.h; the context-parallel split in data/cp_split.h.
//
//   std::vector<int64_t> order = EpochOrder(train.size(), seed, epoch);
//   Tensor loss_sum = CrossEntropy(model.Forward(b.input_ids, {b.position_ids, b.cu_seqlens}),
//                                  b.targets, Reduction::kSum);
#ifndef LOOM_DATA_BATCH_H_
#define LOOM_DATA_BATCH_H_

#include <cstdint>
#include <vector>

#include "data/example.h"
#include "runtime/tensor.h"

namespace loom::data {

struct Batch {
  Tensor input_ids;  // i64 [B, T], right-padded with the pad id
  // i64 [B, T], Hugging Face's convention (unshifted): -100 at padding and at
  // the first token of every sample, so a shift inside a row never trains
  // one sample's last token on the next sample's first.
  Tensor labels;
  // i64 [B, T]: the label of the *next* token (labels shifted left by one
  // here, before any later split of the sequence); -100 where the next token
  // is not trained, at each sample's last token, and on padding.
  Tensor targets;
  Tensor position_ids;  // i64 [B, T]: restart at 0 at each sample
  // i64 [B, T]: 0 on padding; 1 on real tokens (plain and V1) or the
  // 1-based sample number within its row (V2).
  Tensor attention_mask;
  // Packed rows: i32 [n+1] sample boundaries over the flattened B*T tokens
  // (each row's padding tail is a segment of its own), for varlen attention.
  // Undefined for plain padded batches (one sequence per row).
  Tensor cu_seqlens;
  int64_t max_seqlen = 0;            // longest segment of cu_seqlens (or T)
  int64_t num_tokens = 0;            // real (non-pad) tokens
  int64_t num_trainable_tokens = 0;  // targets != -100
};

// A permutation of [0, n): the same for the same (seed, epoch) on every
// machine and rank (Philox-based Fisher-Yates), different across epochs.
std::vector<int64_t> EpochOrder(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace loom::data

#endif  // LOOM_DATA_BATCH_H_
