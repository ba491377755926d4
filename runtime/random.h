// The random-number state shared by every device: a seed and a counter offset.
//
// Each random fill of n elements reserves n Philox counters, so the stream of
// numbers depends only on the seed and the order of fills, on any device.
// Activation checkpointing saves and restores the offset to recompute the
// same numbers.
#ifndef LOOM_RUNTIME_RANDOM_H_
#define LOOM_RUNTIME_RANDOM_H_

#include <cstdint>
#include <mutex>

namespace loom {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eedull) : seed_(seed) {}

  // Resets the offset too.
  void SetSeed(uint64_t seed) {
    std::lock_guard<std::mutex> lock(mu_);
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const {
    std::lock_guard<std::mutex> lock(mu_);
    return offset_;
  }
  void SetOffset(uint64_t offset) {
    std::lock_guard<std::mutex> lock(mu_);
    offset_ = offset;
  }
  // Reserves `n` counters; returns the first.
  uint64_t Reserve(uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t first = offset_;
    offset_ += n;
    return first;
  }

 private:
  mutable std::mutex mu_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide generator (seeded by the trainer's `seed`).
Generator& DefaultGenerator();

}  // namespace loom

#endif  // LOOM_RUNTIME_RANDOM_H_
