// The context-parallel split of a collated batch, balanced for causal
// attention (the layout of Megatron-LM and Transformer Engine).
//
//   std::vector<CpShard> shards = SplitForContextParallel(batch, /*cp=*/2, pad_id);
//   const Batch& mine = shards[cp_rank].batch;   // this rank's tokens
//
// Every segment of every row (a sample of a packed row, the padding tail, or
// the whole row of a plain batch) is padded at its end to a multiple of
// 2*cp tokens and cut into 2*cp equal chunks; rank i takes chunks i and
// 2*cp-1-i, so each rank does the same causal work (early chunks see few
// keys, late chunks many). Targets were shifted before the split (Batch::
// targets), so no token loses its target at a chunk border; each token keeps
// its true position id. A rank's row is its chunks in segment order; its
// cu_seqlens mark where each segment's pair of chunks starts, and `chunks`
// says where every local chunk sits in the unsplit row, so an attention that
// gathers keys across ranks can apply the exact causal, per-sample mask.
// Padding added here is never trained (target -100). All ranks get rows of
// the same length.
#ifndef LOOM_DATA_CP_SPLIT_H_
#define LOOM_DATA_CP_SPLIT_H_

#include <cstdint>
#include <vector>

#include "data/batch.h"

namespace loom::data {

struct CpChunk {
  int64_t row = 0;
  int64_t segment = 0;      // index of the segment in the unsplit batch's cu_seqlens order
  int64_t local_start = 0;  // first token in this rank's row
  int64_t length = 0;
  int64_t segment_offset = 0;  // position of the chunk's first token inside its padded segment
  int64_t source_start = 0;    // its first token in the unsplit row (may point into added
                               // padding: source_start + i >= segment end means padding)
};

struct CpShard {
  Batch batch;  // input_ids, targets, position_ids, cu_seqlens of this rank (labels undefined)
  std::vector<CpChunk> chunks;
};

// Splits `batch` (from Collate or CollatePacked) for cp ranks. cp == 1
// returns the batch itself. Padding tokens get `pad_id`.
std::vector<CpShard> SplitForContextParallel(const Batch& batch, int64_t cp, int32_t pad_id);

}  // namespace loom::data

#endif  // LOOM_DATA_CP_SPLIT_H_
