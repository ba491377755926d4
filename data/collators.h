// Collators: examples to a Batch (data/batch.h).
//
//   // Plain padding, one example per row (no packing):
//   Batch b = Collate({&rows[0], &rows[1]}, tokenizer.pad_id(), /*pad_to_multiple=*/64);
//   // Packing: one row per bin, Axolotl's V1 / V2 collators:
//   Batch p = CollatePacked({{&a, &b, &c}, {&d}}, {.pad_id = 0, .pad_to_multiple = 10});
//
// Packed rows follow Axolotl's worked example (shared/specs/axolotl-behavior.md
// 4.3): samples concatenated in bin order, position_ids restarting at 0 per
// sample, padding on the right with input pad_id, labels -100, position_ids
// 0, 1, 2, ... and attention_mask 0; V1's mask is 1 on every real token, V2's
// is the sample's 1-based number in its row. Unlike Axolotl, the first label
// of every sample is -100, so no target crosses a sample boundary, and
// cu_seqlens / max_seqlen are derived for varlen attention.
#ifndef LOOM_DATA_COLLATORS_H_
#define LOOM_DATA_COLLATORS_H_

#include <cstdint>
#include <vector>

#include "data/batch.h"

namespace loom::data {

// Pads every row to the longest one (rounded up to `pad_to_multiple`);
// position ids run 0..T-1 over each whole row.
Batch Collate(const std::vector<const Example*>& rows, int32_t pad_id, int64_t pad_to_multiple = 1);

enum class PackedCollator { kV1, kV2 };

struct PackedCollateOptions {
  int32_t pad_id = 0;
  int64_t pad_to_multiple = 1;  // the row length T is rounded up to this
  PackedCollator kind = PackedCollator::kV2;
};

// One row per bin (an empty bin is a row of padding). Rows are padded to the
// longest bin rounded up to pad_to_multiple.
Batch CollatePacked(const std::vector<std::vector<const Example*>>& bins,
                    const PackedCollateOptions& options);

// Axolotl's padding rule: pad_to_sequence_len rounds rows up to
// M * ceil(sequence_len / M) with M = pad_to_multiple_of (default 64);
// otherwise to M if pad_to_multiple_of is given, else to 1.
int64_t PadMultiple(bool pad_to_sequence_len, int64_t pad_to_multiple_of, int64_t sequence_len);

}  // namespace loom::data

#endif  // LOOM_DATA_COLLATORS_H_
