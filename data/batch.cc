#include "data/batch.h"

#include <numeric>

#include "runtime/philox.h"

namespace loom::data {

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
