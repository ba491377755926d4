// The multipack sampler: one global packing per epoch, dealt to the
// data-parallel ranks so that every rank gets the same number of
// micro-batches and every sample is used exactly once per epoch.
//
//   MultipackSampler sampler(lengths, {.pack = {.capacity = 2048, .seed = 42},
//                                      .bins_per_micro_batch = 1,
//                                      .dp_rank = rank, .dp_size = world});
//   LOOM_ASSIGN_OR_RETURN(const EpochPlan* plan, sampler.Plan(epoch));
//   for (int64_t m = 0; m < plan->micro_batches_per_rank; ++m) {
//     std::vector<absl::Span<const int64_t>> bins = sampler.MicroBatch(*plan, m);  // K bins
//   }
//
// Every rank packs the whole dataset itself (PackSamples, deterministic for
// (seed, epoch)), so ranks agree without communicating. Global micro-batch g
// is bins [g*K, (g+1)*K); rank r takes g = m*dp_size + r. When the bin count
// is not a multiple of K*dp_size, the bins with the most samples are split in
// two (a split bin still fits its capacity) until it is; only if there are
// not enough multi-sample bins are empty (all-padding) bins added, and those
// are counted in the plan. No sample is ever dropped. A run resumes at
// (epoch, m) by asking for that plan and micro-batch: nothing is replayed.
#ifndef LOOM_DATA_MULTIPACK_SAMPLER_H_
#define LOOM_DATA_MULTIPACK_SAMPLER_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "data/packer.h"

namespace loom::data {

struct SamplerOptions {
  PackOptions pack;                  // capacity, groups, seed; `epoch` is set per epoch
  int64_t bins_per_micro_batch = 1;  // K: rows of one micro-batch
  int64_t dp_rank = 0;
  int64_t dp_size = 1;
};

struct EpochPlan {
  int64_t epoch = 0;
  Packing bins;                        // the balanced global bins (a multiple of K*dp_size)
  int64_t micro_batches_per_rank = 0;  // the same on every rank
  int64_t packed_bins = 0;             // bins the packer made
  int64_t split_bins = 0;              // bins split in two to fill the last round
  int64_t empty_bins = 0;              // all-padding bins added (fewer samples than bins)
  double efficiency = 0;               // packed tokens / (packed_bins * capacity)
};

class MultipackSampler {
 public:
  MultipackSampler(std::vector<int32_t> lengths, SamplerOptions options);

  // The plan of `epoch` (the last one asked for is cached). Errors: bad
  // options or a sample that does not fit a bin.
  absl::StatusOr<const EpochPlan*> Plan(int64_t epoch);

  // This rank's micro-batch m of `plan`: K bins of sample indices.
  std::vector<absl::Span<const int64_t>> MicroBatch(const EpochPlan& plan, int64_t m) const;

  const SamplerOptions& options() const { return options_; }
  int64_t num_samples() const { return int64_t(lengths_.size()); }

 private:
  std::vector<int32_t> lengths_;
  SamplerOptions options_;
  std::optional<EpochPlan> cached_;
};

// Splits bins (most samples first) and then adds empty bins until the count
// is a multiple of `multiple` (exposed for tests).
void BalanceBins(int64_t multiple, Packing* bins, int64_t* split_bins, int64_t* empty_bins);

// Axolotl's step estimate from `sample_packing_eff_est`:
// (floor(0.99 * tokens / eff_est / sequence_len) // batch_size - 1) * epochs,
// at least 1. batch_size = micro_batch_size * gradient_accumulation * dp.
int64_t EstimatedTotalSteps(int64_t total_tokens, double eff_est, int64_t sequence_len,
                            int64_t batch_size, double num_epochs);

}  // namespace loom::data

#endif  // LOOM_DATA_MULTIPACK_SAMPLER_H_
