#include "data/packer.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "data/batch.h"
#include "runtime/parallel.h"

namespace loom::data {
namespace {

// Keys the bin shuffle apart from the sample shuffle of the same (seed, epoch).
constexpr uint64_t kBinShuffleSalt = 0x9E3779B97F4A7C15ull;

// Max segment tree over the remaining capacity of `leaves` bins. Unopened
// bins hold the full capacity, so the leftmost bin with room is either an
// open one or the next one to open: first fit is one descent.
class RemainingTree {
 public:
  RemainingTree(int64_t leaves, int32_t capacity) {
    size_ = 1;
    while (size_ < leaves) size_ *= 2;
    tree_.assign(size_t(2 * size_), capacity);
  }
  // The leftmost leaf whose remaining capacity is >= need (one must exist).
  int64_t FirstFit(int32_t need) const {
    int64_t node = 1;
    while (node < size_) node = tree_[size_t(2 * node)] >= need ? 2 * node : 2 * node + 1;
    return node - size_;
  }
  int32_t Get(int64_t leaf) const { return tree_[size_t(size_ + leaf)]; }
  void Set(int64_t leaf, int32_t value) {
    int64_t node = size_ + leaf;
    tree_[size_t(node)] = value;
    for (node /= 2; node >= 1; node /= 2) {
      const int32_t m = std::max(tree_[size_t(2 * node)], tree_[size_t(2 * node + 1)]);
      if (tree_[size_t(node)] == m) break;  // ancestors unchanged
      tree_[size_t(node)] = m;
    }
  }

 private:
  int64_t size_;
  std::vector<int32_t> tree_;
};

Packing NextFit(absl::Span<const int32_t> lengths, int64_t capacity, int64_t bin_size) {
  Packing p;
  std::vector<int64_t> open;
  int64_t used = 0;
  for (int64_t i = 0; i < int64_t(lengths.size()); ++i) {
    const int64_t len = lengths[size_t(i)];
    if (!open.empty() && (used + len > capacity || int64_t(open.size()) >= bin_size)) {
      p.AddBin(open);
      open.clear();
      used = 0;
    }
    open.push_back(i);
    used += len;
    p.tokens += len;
  }
  if (!open.empty()) p.AddBin(open);
  return p;
}

// Bins in the order of a (seed, epoch) permutation.
Packing ShuffleBins(const Packing& in, uint64_t seed, int64_t epoch) {
  const std::vector<int64_t> order = EpochOrder(in.num_bins(), seed ^ kBinShuffleSalt, epoch);
  Packing out;
  out.tokens = in.tokens;
  out.samples.reserve(in.samples.size());
  out.offsets.reserve(in.offsets.size());
  for (int64_t b : order) out.AddBin(in.bin(b));
  return out;
}

}  // namespace

Packing FirstFitDecreasing(absl::Span<const int32_t> lengths, absl::Span<const int64_t> members,
                           int64_t capacity, int64_t bin_size, int64_t sort_divisor) {
  const int64_t n = int64_t(members.size());
  // Samples longer than `small` in a counting sort by length, longest first
  // (ties keep the order of `members`), then the rest in their given order.
  const int64_t small = sort_divisor > 0 ? capacity / sort_divisor : 0;
  std::vector<int64_t> count(static_cast<size_t>(capacity) + 2, 0);
  for (int64_t s : members) {
    if (lengths[size_t(s)] > small) ++count[size_t(capacity - lengths[size_t(s)])];
  }
  int64_t run = 0;
  for (int64_t& c : count) {
    const int64_t here = c;
    c = run;
    run += here;
  }
  std::vector<int64_t> sorted(static_cast<size_t>(n));
  int64_t tail = run;  // the short samples start after the sorted ones
  for (int64_t s : members) {
    const int64_t len = lengths[size_t(s)];
    sorted[size_t(len > small ? count[size_t(capacity - len)]++ : tail++)] = s;
  }

  RemainingTree tree(std::max<int64_t>(n, 1), int32_t(capacity));
  std::vector<int64_t> bin_of(static_cast<size_t>(n)), members_in(size_t(n), 0);
  int64_t bins = 0;
  Packing p;
  for (int64_t k = 0; k < n; ++k) {
    const int32_t len = lengths[size_t(sorted[size_t(k)])];
    const int64_t b = tree.FirstFit(len);
    bins = std::max(bins, b + 1);
    bin_of[size_t(k)] = b;
    const bool full = ++members_in[size_t(b)] >= bin_size;
    tree.Set(b, full ? -1 : tree.Get(b) - len);  // -1: closed to every sample
    p.tokens += len;
  }
  // Compressed rows, members in the order they were placed.
  p.offsets.assign(size_t(bins) + 1, 0);
  for (int64_t b = 0; b < bins; ++b)
    p.offsets[size_t(b) + 1] = p.offsets[size_t(b)] + members_in[size_t(b)];
  p.samples.resize(size_t(n));
  std::vector<int64_t> fill(p.offsets.begin(), p.offsets.end() - 1);
  for (int64_t k = 0; k < n; ++k)
    p.samples[size_t(fill[size_t(bin_of[size_t(k)])]++)] = sorted[size_t(k)];
  return p;
}

int64_t LowerBoundBins(absl::Span<const int32_t> lengths, int64_t capacity) {
  int64_t sum = 0;
  for (int32_t l : lengths) sum += l;
  return (sum + capacity - 1) / capacity;
}

absl::StatusOr<Packing> PackSamples(absl::Span<const int32_t> lengths, const PackOptions& o) {
  if (o.capacity < 1 || o.capacity > (int64_t(1) << 30)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("packing: capacity must be in [1, 2^30] tokens, got %d", o.capacity));
  }
  if (o.bin_size < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "packing: sample_packing_bin_size must be a positive integer, got %d", o.bin_size));
  }
  if (o.sort_divisor < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("packing: sort_divisor must be >= 0, got %d", o.sort_divisor));
  }
  if (o.group_size < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "packing: sample_packing_group_size must be a positive integer, got %d", o.group_size));
  }
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] < 1 || lengths[i] > o.capacity) {
      return absl::InvalidArgumentError(
          absl::StrFormat("packing: sample %d has length %d; lengths must be in [1, %d] (the bin "
                          "capacity)",
                          i, lengths[i], o.capacity));
    }
  }
  if (o.sequential) return NextFit(lengths, o.capacity, o.bin_size);

  const int64_t n = int64_t(lengths.size());
  const std::vector<int64_t> order = EpochOrder(n, o.seed, o.epoch);
  const int64_t groups = (n + o.group_size - 1) / o.group_size;
  std::vector<Packing> parts(static_cast<size_t>(groups));
  ParallelFor(groups, 1, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      const int64_t lo = g * o.group_size, hi = std::min(n, lo + o.group_size);
      parts[size_t(g)] =
          FirstFitDecreasing(lengths, absl::MakeConstSpan(order.data() + lo, size_t(hi - lo)),
                             o.capacity, o.bin_size, o.sort_divisor);
    }
  });
  Packing all;
  all.samples.reserve(size_t(n));
  for (const Packing& part : parts) {
    for (int64_t b = 0; b < part.num_bins(); ++b) all.AddBin(part.bin(b));
    all.tokens += part.tokens;
  }
  return ShuffleBins(all, o.seed, o.epoch);
}

}  // namespace loom::data
