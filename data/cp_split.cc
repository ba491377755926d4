#include "data/cp_split.h"

#include "runtime/status.h"

namespace loom::data {
namespace {

struct Segment {
  int64_t row, begin, end;  // [begin, end) within the row
};

std::vector<Segment> Segments(const Batch& batch) {
  const int64_t b = batch.input_ids.size(0), t = batch.input_ids.size(1);
  std::vector<Segment> out;
  if (!batch.cu_seqlens.defined()) {
    for (int64_t r = 0; r < b; ++r) out.push_back({r, 0, t});
    return out;
  }
  const std::vector<int32_t> cu = batch.cu_seqlens.ToVector<int32_t>();
  for (size_t i = 0; i + 1 < cu.size(); ++i) {
    const int64_t lo = cu[i], hi = cu[i + 1];
    LOOM_CHECK(lo / t == (hi - 1) / t, "cp split: segment [%d, %d) crosses a row of %d", lo, hi, t);
    out.push_back({lo / t, lo % t, lo % t + (hi - lo)});
  }
  return out;
}

}  // namespace

std::vector<CpShard> SplitForContextParallel(const Batch& batch, int64_t cp, int32_t pad_id) {
  LOOM_CHECK(cp >= 1, "cp split: cp must be >= 1, got %d", cp);
  if (cp == 1) return {CpShard{batch, {}}};
  const int64_t b = batch.input_ids.size(0), t = batch.input_ids.size(1);
  const std::vector<int64_t> ids = batch.input_ids.ToVector<int64_t>();
  const std::vector<int64_t> targets = batch.targets.ToVector<int64_t>();
  const std::vector<int64_t> positions = batch.position_ids.ToVector<int64_t>();
  const std::vector<Segment> segments = Segments(batch);
  const std::vector<int64_t> mask = batch.attention_mask.defined()
                                        ? batch.attention_mask.ToVector<int64_t>()
                                        : std::vector<int64_t>(ids.size(), 1);

  // Local row length: the same on every rank (each segment gives 2 chunks).
  std::vector<int64_t> row_len(size_t(b), 0);
  for (const Segment& s : segments) {
    const int64_t padded = (s.end - s.begin + 2 * cp - 1) / (2 * cp) * (2 * cp);
    row_len[size_t(s.row)] += padded / cp;
  }
  int64_t local_t = 1;
  for (int64_t l : row_len) local_t = std::max(local_t, l);

  std::vector<CpShard> shards(static_cast<size_t>(cp));
  for (int64_t rank = 0; rank < cp; ++rank) {
    CpShard& shard = shards[size_t(rank)];
    std::vector<int64_t> out_ids(size_t(b * local_t), pad_id),
        out_targets(size_t(b * local_t), kIgnoreIndex), out_pos(size_t(b * local_t), 0);
    std::vector<int32_t> cu = {0};
    std::vector<int64_t> fill(size_t(b), 0);
    for (size_t si = 0; si < segments.size(); ++si) {
      const Segment& s = segments[si];
      const int64_t len = s.end - s.begin;
      const int64_t chunk = (len + 2 * cp - 1) / (2 * cp);
      const int64_t first_pos = positions[size_t(s.row * t + s.begin)];
      for (int64_t c : {rank, 2 * cp - 1 - rank}) {
        const int64_t local = s.row * local_t + fill[size_t(s.row)];
        shard.chunks.push_back({.row = s.row,
                                .segment = int64_t(si),
                                .local_start = fill[size_t(s.row)],
                                .length = chunk,
                                .segment_offset = c * chunk,
                                .source_start = s.begin + c * chunk});
        for (int64_t i = 0; i < chunk; ++i) {
          const int64_t off = c * chunk + i;  // within the padded segment
          if (off < len) {
            const size_t src = size_t(s.row * t + s.begin + off);
            out_ids[size_t(local + i)] = ids[src];
            out_targets[size_t(local + i)] = targets[src];
            out_pos[size_t(local + i)] = positions[src];
            shard.batch.num_tokens += mask[src] != 0;
          } else {
            out_pos[size_t(local + i)] = first_pos + off;  // true position past the end
          }
        }
        fill[size_t(s.row)] += chunk;
      }
      cu.push_back(int32_t(s.row * local_t + fill[size_t(s.row)]));
    }
    // Rows shorter than the longest end in one padding segment (positions
    // 0, 1, ...). Segments come in row order, so the row's end follows them.
    for (int64_t r = 0; r < b; ++r) {
      for (int64_t i = fill[size_t(r)]; i < local_t; ++i) {
        out_pos[size_t(r * local_t + i)] = i - fill[size_t(r)];
      }
    }
    std::vector<int32_t> ordered = {0};
    size_t next = 1;
    for (int64_t r = 0; r < b; ++r) {
      while (next < cu.size() && cu[next] <= (r + 1) * local_t) ordered.push_back(cu[next++]);
      if (ordered.back() < (r + 1) * local_t) ordered.push_back(int32_t((r + 1) * local_t));
    }
    Batch& out = shard.batch;
    for (size_t i = 0; i < out_targets.size(); ++i) {
      out.num_trainable_tokens += out_targets[i] != kIgnoreIndex;
    }
    int64_t max_seqlen = 0;
    for (size_t i = 0; i + 1 < ordered.size(); ++i) {
      max_seqlen = std::max<int64_t>(max_seqlen, ordered[i + 1] - ordered[i]);
    }
    out.max_seqlen = max_seqlen;
    out.input_ids = Tensor::FromVector(out_ids, {b, local_t});
    out.targets = Tensor::FromVector(out_targets, {b, local_t});
    out.position_ids = Tensor::FromVector(out_pos, {b, local_t});
    out.cu_seqlens = Tensor::FromVector(ordered, {int64_t(ordered.size())});
  }
  return shards;
}

}  // namespace loom::data
