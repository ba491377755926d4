// Packing speed and efficiency on the length sets, next to Axolotl's
// numbers measured on this machine (shared/specs/axolotl-behavior.md 9):
//
//   bazel run -c opt //data:packer_benchmark [-- --repeats=5]
//
// Sets: (1) 100,000 log-normal lengths (median 300, sigma 1, rounded,
// clipped to [16, 2048]) into 2048; (2) 1,000,000 uniform lengths in
// [1, 4096] into 4096; (3) the spec's chat mix into 4096. Prints the best
// wall time over the repeats, the efficiency tokens / (bins * capacity) and
// the lower bound ceil(tokens / capacity).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "data/packer.h"
#include "runtime/parallel.h"

ABSL_FLAG(int, repeats, 5, "timed runs per set (the best is printed)");

namespace {

using loom::data::Packing;
using loom::data::PackOptions;

std::vector<int32_t> LogNormal(int64_t n, double median, double sigma, int32_t lo, int32_t hi,
                               uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> d(std::log(median), sigma);
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (int32_t& x : out) x = std::clamp(int32_t(std::lround(d(rng))), lo, hi);
  return out;
}

std::vector<int32_t> Uniform(int64_t n, int32_t lo, int32_t hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> d(lo, hi);
  std::vector<int32_t> out(static_cast<size_t>(n));
  for (int32_t& x : out) x = d(rng);
  return out;
}

std::vector<int32_t> ChatMix(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> pick(0, 1);
  std::lognormal_distribution<double> a(std::log(250), 0.7), b(std::log(900), 0.6),
      c(std::log(2600), 0.45);
  std::vector<int32_t> out;
  for (int64_t i = 0; i < n; ++i) {
    const double p = pick(rng);
    const double v = p < 0.6 ? a(rng) : p < 0.9 ? b(rng) : c(rng);
    const int32_t len = std::max<int32_t>(16, int32_t(std::lround(v)));
    if (len <= 4096) out.push_back(len);
  }
  return out;
}

void Run(const char* name, const std::vector<int32_t>& lengths, int64_t capacity, bool sequential,
         double axolotl_eff, double axolotl_s, int64_t sort_divisor = 8) {
  PackOptions o{
      .capacity = capacity, .sequential = sequential, .sort_divisor = sort_divisor, .seed = 42};
  double best = 1e30;
  Packing p;
  for (int r = 0; r < absl::GetFlag(FLAGS_repeats); ++r) {
    const auto start = std::chrono::steady_clock::now();
    p = *loom::data::PackSamples(lengths, o);
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  const int64_t lower = loom::data::LowerBoundBins(lengths, capacity);
  std::printf(
      "| %-26s | %-15s | %9zu | %8lld | %8lld | %.4f | %8.4f s | %.4f / %.2f s | %5.1fx |\n", name,
      sequential          ? "sequential"
      : sort_divisor == 0 ? "FFD, all sorted"
                          : "FFD",
      lengths.size(), (long long)p.num_bins(), (long long)lower, p.Efficiency(capacity), best,
      axolotl_eff, axolotl_s, axolotl_s / best);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::printf("threads: %d; best of %d runs\n\n", loom::NumThreads(), absl::GetFlag(FLAGS_repeats));
  std::printf(
      "| set | packer | samples | bins | lower bound | efficiency | time | Axolotl eff. / time | "
      "speed-up |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  const auto lognormal = LogNormal(100000, 300, 1.0, 16, 2048, 20240601);
  const auto uniform = Uniform(1000000, 1, 4096, 20240602);
  const auto chat = ChatMix(200000, 20240603);
  Run("lognormal 100k, C=2048", lognormal, 2048, false, 0.9958, 0.58);
  Run("uniform 1M, C=4096", uniform, 4096, false, 0.9861, 9.6);
  Run("chat mix 196k, C=4096", chat, 4096, false, 0.9959, 0.69);
  Run("lognormal 100k, C=2048", lognormal, 2048, false, 0.9958, 0.58, 0);
  Run("uniform 1M, C=4096", uniform, 4096, false, 0.9861, 9.6, 0);
  Run("chat mix 196k, C=4096", chat, 4096, false, 0.9959, 0.69, 0);
  Run("lognormal 100k, C=2048", lognormal, 2048, true, 0.8132, 0.02);
  Run("uniform 1M, C=4096", uniform, 4096, true, 0.7500, 0.66);
  Run("chat mix 196k, C=4096", chat, 4096, true, 0.8253, 0.03);
  return 0;
}
