// Sample packing: sample lengths into bins of a fixed token capacity.
//
//   PackOptions o{.capacity = 4096, .seed = 42, .epoch = 0};
//   LOOM_ASSIGN_OR_RETURN(Packing p, PackSamples(lengths, o));
//   for (int64_t b = 0; b < p.num_bins(); ++b) { absl::Span<const int64_t> s = p.bin(b); ... }
//   printf("efficiency %.4f\n", p.Efficiency(o.capacity));
//
// Default (first-fit-decreasing): the samples are shuffled by (seed, epoch)
// and cut into groups of `group_size`; inside each group the samples longer
// than capacity / sort_divisor are sorted by length (longest first, ties in
// shuffled order) and placed first, then the shorter ones in shuffled order;
// each goes to the first bin with room, found in O(log bins) by a max segment
// tree of remaining capacities. Why not sort the short ones too: when many
// short samples share a bin, sorting them makes every bin a run of equal
// lengths, and length often tracks content (on the embedded example each
// micro-batch became one task, and training converged far slower). Long
// samples decide how tight the packing is; short ones fill the gaps in any
// order (the benchmark shows the same efficiency). sort_divisor 0 sorts all. Groups are packed in
// parallel (runtime/parallel.h); the result does not depend on the thread count. The bins are then
// shuffled by (seed, epoch), so training order stays random and a fresh packing is made every
// epoch.
//
// Sequential (`sequential`): next-fit in the given sample order, bins in
// order (curriculum order preserved; no shuffle).
//
// Both modes cap a bin at `bin_size` samples (Axolotl's
// sample_packing_bin_size). Every rank calling this with the same arguments
// gets the same bins without communicating.
#ifndef LOOM_DATA_PACKER_H_
#define LOOM_DATA_PACKER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace loom::data {

struct PackOptions {
  int64_t capacity = 0;         // tokens per bin
  int64_t group_size = 100000;  // samples per independently packed group
  int64_t bin_size = 200;       // most samples in one bin
  bool sequential = false;      // next-fit in order instead of FFD
  int64_t sort_divisor = 8;     // sort samples longer than capacity / sort_divisor (0: all)
  uint64_t seed = 0;
  int64_t epoch = 0;
};

// Bins as compressed rows: bin b holds samples[offsets[b] .. offsets[b+1]).
struct Packing {
  std::vector<int64_t> offsets{0};
  std::vector<int64_t> samples;
  int64_t tokens = 0;  // sum of the packed samples' lengths

  int64_t num_bins() const { return int64_t(offsets.size()) - 1; }
  absl::Span<const int64_t> bin(int64_t b) const {
    return absl::MakeConstSpan(samples.data() + offsets[size_t(b)],
                               size_t(offsets[size_t(b) + 1] - offsets[size_t(b)]));
  }
  void AddBin(absl::Span<const int64_t> members) {
    samples.insert(samples.end(), members.begin(), members.end());
    offsets.push_back(int64_t(samples.size()));
  }
  // tokens / (bins * capacity); 0 for no bins.
  double Efficiency(int64_t capacity) const {
    return num_bins() == 0 ? 0.0 : double(tokens) / (double(num_bins()) * double(capacity));
  }
};

// Packs samples 0..n-1 of the given lengths. Errors: capacity or bin_size
// < 1, a length < 1 or > capacity (naming the sample).
absl::StatusOr<Packing> PackSamples(absl::Span<const int32_t> lengths, const PackOptions& options);

// First-fit-decreasing of one group, bins in creation order: the plain
// building block (exposed for tests and benchmarks). `members` are sample
// indices into `lengths`; those of length <= capacity / sort_divisor keep
// their order and go after the sorted ones (sort_divisor 0: sort all).
Packing FirstFitDecreasing(absl::Span<const int32_t> lengths, absl::Span<const int64_t> members,
                           int64_t capacity, int64_t bin_size, int64_t sort_divisor = 0);

// The fewest bins any packing could use: ceil(sum / capacity).
int64_t LowerBoundBins(absl::Span<const int32_t> lengths, int64_t capacity);

}  // namespace loom::data

#endif  // LOOM_DATA_PACKER_H_
