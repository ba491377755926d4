#include "data/multipack_sampler.h"

#include <cmath>
#include <queue>

#include "absl/strings/str_format.h"
#include "runtime/status.h"

namespace loom::data {

void BalanceBins(int64_t multiple, Packing* bins, int64_t* split_bins, int64_t* empty_bins) {
  *split_bins = *empty_bins = 0;
  const int64_t have = bins->num_bins();
  const int64_t want = (have + multiple - 1) / multiple * multiple;
  if (want == have) return;
  // Bins as separate lists; split the fullest (most samples, then lowest
  // index) until enough, appending the second halves in split order.
  std::vector<std::vector<int64_t>> lists(static_cast<size_t>(have));
  for (int64_t b = 0; b < have; ++b) {
    auto s = bins->bin(b);
    lists[size_t(b)].assign(s.begin(), s.end());
  }
  auto less = [&](int64_t a, int64_t b) {
    const size_t na = lists[size_t(a)].size(), nb = lists[size_t(b)].size();
    return na != nb ? na < nb : a > b;
  };
  std::priority_queue<int64_t, std::vector<int64_t>, decltype(less)> fullest(less);
  for (int64_t b = 0; b < have; ++b) fullest.push(b);
  while (int64_t(lists.size()) < want && !fullest.empty() &&
         lists[size_t(fullest.top())].size() >= 2) {
    const int64_t b = fullest.top();
    fullest.pop();
    std::vector<int64_t>& src = lists[size_t(b)];
    const size_t half = src.size() / 2;
    std::vector<int64_t> tail(src.begin() + int64_t(half), src.end());
    src.resize(half);
    lists.push_back(std::move(tail));
    fullest.push(b);
    fullest.push(int64_t(lists.size()) - 1);
    ++*split_bins;
  }
  while (int64_t(lists.size()) < want) {
    lists.emplace_back();
    ++*empty_bins;
  }
  Packing out;
  out.tokens = bins->tokens;
  for (const auto& l : lists) out.AddBin(l);
  *bins = std::move(out);
}

MultipackSampler::MultipackSampler(std::vector<int32_t> lengths, SamplerOptions options)
    : lengths_(std::move(lengths)), options_(options) {}

absl::StatusOr<const EpochPlan*> MultipackSampler::Plan(int64_t epoch) {
  if (cached_.has_value() && cached_->epoch == epoch) return &*cached_;
  const SamplerOptions& o = options_;
  if (o.dp_size < 1 || o.dp_rank < 0 || o.dp_rank >= o.dp_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("sampler: data-parallel rank %d of %d is invalid", o.dp_rank, o.dp_size));
  }
  if (o.bins_per_micro_batch < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "sampler: bins per micro-batch must be >= 1, got %d", o.bins_per_micro_batch));
  }
  PackOptions pack = o.pack;
  pack.epoch = epoch;
  EpochPlan plan;
  plan.epoch = epoch;
  LOOM_ASSIGN_OR_RETURN(plan.bins, PackSamples(lengths_, pack));
  plan.packed_bins = plan.bins.num_bins();
  plan.efficiency = plan.bins.Efficiency(pack.capacity);
  const int64_t round = o.bins_per_micro_batch * o.dp_size;
  BalanceBins(round, &plan.bins, &plan.split_bins, &plan.empty_bins);
  plan.micro_batches_per_rank = plan.bins.num_bins() / round;
  cached_ = std::move(plan);
  return &*cached_;
}

std::vector<absl::Span<const int64_t>> MultipackSampler::MicroBatch(const EpochPlan& plan,
                                                                    int64_t m) const {
  LOOM_CHECK(m >= 0 && m < plan.micro_batches_per_rank, "micro-batch %d of %d", m,
             plan.micro_batches_per_rank);
  const int64_t k = options_.bins_per_micro_batch;
  const int64_t global = m * options_.dp_size + options_.dp_rank;
  std::vector<absl::Span<const int64_t>> out;
  for (int64_t b = global * k; b < (global + 1) * k; ++b) out.push_back(plan.bins.bin(b));
  return out;
}

int64_t EstimatedTotalSteps(int64_t total_tokens, double eff_est, int64_t sequence_len,
                            int64_t batch_size, double num_epochs) {
  const double rows = std::floor(0.99 * double(total_tokens) / eff_est / double(sequence_len));
  const double per_epoch = std::floor(rows / double(batch_size)) - 1;
  return std::max<int64_t>(1, int64_t(std::floor(per_epoch * num_epochs)));
}

}  // namespace loom::data
