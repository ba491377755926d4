// Philox4x32-10: known-answer vectors, distribution moments, the CPU random
// fills (counter offset + i for element i, for any thread count) and the
// Generator's counter bookkeeping.
#include "runtime/philox.h"

#include <cmath>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/backend.h"
#include "runtime/ops/random.h"
#include "runtime/parallel.h"
#include "runtime/random.h"

namespace loom {
namespace {

void ExpectBlock(const philox::Block& b, uint32_t x0, uint32_t x1, uint32_t x2, uint32_t x3) {
  EXPECT_EQ(b.x[0], x0);
  EXPECT_EQ(b.x[1], x1);
  EXPECT_EQ(b.x[2], x2);
  EXPECT_EQ(b.x[3], x3);
}

// The known-answer tests published with Random123 (kat_vectors, philox4x32_10).
TEST(PhiloxTest, KnownAnswerVectors) {
  ExpectBlock(philox::Philox4x32_10({{0, 0, 0, 0}}, 0, 0), 0x6627e8d5, 0xe169c58d, 0xbc57ac4c,
              0x9b00dbd8);
  ExpectBlock(philox::Philox4x32_10({{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff,
                                    0xffffffff),
              0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd);
  ExpectBlock(philox::Philox4x32_10({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822,
                                    0x299f31d0),
              0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1);
}

TEST(PhiloxTest, GenerateMapsCounterAndSeedToWords) {
  const uint64_t seed = 0x0123456789abcdefull, n = 0xfedcba9876543210ull;
  const philox::Block want =
      philox::Philox4x32_10({{0x76543210u, 0xfedcba98u, 0, 0}}, 0x89abcdefu, 0x01234567u);
  ExpectBlock(philox::Generate(seed, n), want.x[0], want.x[1], want.x[2], want.x[3]);
  // Distinct counters and distinct seeds give distinct words.
  EXPECT_NE(philox::Generate(1, 0).x[0], philox::Generate(1, 1).x[0]);
  EXPECT_NE(philox::Generate(1, 0).x[0], philox::Generate(2, 0).x[0]);
  EXPECT_NE(philox::Generate(1, 0).x[0], philox::Generate(1, uint64_t(1) << 32).x[0]);
}

constexpr int kSamples = 100000;

TEST(PhiloxTest, UniformIsInUnitIntervalWithUniformMoments) {
  double sum = 0, sum_sq = 0, lo = 1, hi = 0;
  std::vector<int> histogram(10, 0);
  for (int i = 0; i < kSamples; ++i) {
    const float u = philox::Uniform(42, uint64_t(i));
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    // 24 random bits: u * 2^24 is an integer.
    ASSERT_EQ(std::floor(double(u) * 16777216.0), double(u) * 16777216.0);
    sum += u;
    sum_sq += double(u) * u;
    lo = std::min<double>(lo, u);
    hi = std::max<double>(hi, u);
    ++histogram[int(u * 10)];
  }
  const double mean = sum / kSamples, var = sum_sq / kSamples - mean * mean;
  // Bounds: 5 standard errors of the estimators.
  EXPECT_NEAR(mean, 0.5, 5 * std::sqrt(1.0 / 12 / kSamples));
  EXPECT_NEAR(var, 1.0 / 12, 5 * std::sqrt(1.0 / 180 / kSamples));
  EXPECT_LT(lo, 1e-3);
  EXPECT_GT(hi, 1 - 1e-3);
  for (int count : histogram) EXPECT_NEAR(count, kSamples / 10, 5 * std::sqrt(kSamples * 0.09));
}

TEST(PhiloxTest, NormalHasStandardNormalMoments) {
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
  int within_one = 0;
  for (int i = 0; i < kSamples; ++i) {
    const double z = philox::Normal(7, uint64_t(i));
    ASSERT_TRUE(std::isfinite(z));
    m1 += z;
    m2 += z * z;
    m3 += z * z * z;
    m4 += z * z * z * z;
    within_one += std::fabs(z) < 1;
  }
  m1 /= kSamples;
  m2 /= kSamples;
  m3 /= kSamples;
  m4 /= kSamples;
  const double n = kSamples;
  EXPECT_NEAR(m1, 0, 5 / std::sqrt(n));
  EXPECT_NEAR(m2, 1, 5 * std::sqrt(2 / n));
  EXPECT_NEAR(m3, 0, 5 * std::sqrt(15 / n));
  EXPECT_NEAR(m4, 3, 5 * std::sqrt(96 / n));
  const double p = 0.6826894921370859;  // P(|z| < 1)
  EXPECT_NEAR(within_one / n, p, 5 * std::sqrt(p * (1 - p) / n));
}

class RandomFillTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    saved_threads_ = NumThreads();
    SetNumThreads(GetParam());
  }
  void TearDown() override { SetNumThreads(saved_threads_); }
  int saved_threads_ = 1;
};

// Enough elements for several parallel chunks.
constexpr int64_t kFill = 100003;

TEST_P(RandomFillTest, UniformElementIUsesCounterOffsetPlusI) {
  const uint64_t seed = 99, offset = (uint64_t(1) << 32) - 5;  // crosses the 32-bit boundary
  for (DType dt : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    Tensor t = Tensor::Empty({kFill}, dt);
    GetBackend(Device::CPU()).RandomUniform(t, seed, offset, -2.0, 3.0);
    const std::vector<double> got = t.ToDoubles();
    Tensor want = Tensor::Empty({kFill}, dt);
    DispatchFloating(dt, "test", [&](auto tag) {
      using T = decltype(tag);
      T* w = want.data<T>();
      for (int64_t i = 0; i < kFill; ++i) {
        w[i] = FromDouble<T>(-2.0 + 5.0 * double(philox::Uniform(seed, offset + uint64_t(i))));
      }
    });
    ASSERT_EQ(got, want.ToDoubles()) << DTypeName(dt);
  }
}

TEST_P(RandomFillTest, NormalElementIUsesCounterOffsetPlusI) {
  const uint64_t seed = 5, offset = 1000;
  for (DType dt : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    Tensor t = Tensor::Empty({kFill}, dt);
    GetBackend(Device::CPU()).RandomNormal(t, seed, offset, 0.5, 2.0);
    const std::vector<double> got = t.ToDoubles();
    Tensor want = Tensor::Empty({kFill}, dt);
    DispatchFloating(dt, "test", [&](auto tag) {
      using T = decltype(tag);
      T* w = want.data<T>();
      for (int64_t i = 0; i < kFill; ++i) {
        w[i] = FromDouble<T>(0.5 + 2.0 * philox::Normal(seed, offset + uint64_t(i)));
      }
    });
    ASSERT_EQ(got, want.ToDoubles()) << DTypeName(dt);
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, RandomFillTest, ::testing::Values(1, 2, 3));

TEST(GeneratorTest, ReserveAdvancesTheOffset) {
  Generator g(1234);
  EXPECT_EQ(g.seed(), 1234u);
  EXPECT_EQ(g.offset(), 0u);
  EXPECT_EQ(g.Reserve(10), 0u);
  EXPECT_EQ(g.Reserve(5), 10u);
  EXPECT_EQ(g.offset(), 15u);
  EXPECT_EQ(g.Reserve(0), 15u);
  g.SetOffset(100);
  EXPECT_EQ(g.Reserve(1), 100u);
  g.SetSeed(7);
  EXPECT_EQ(g.seed(), 7u);
  EXPECT_EQ(g.offset(), 0u);
}

TEST(GeneratorTest, ConsecutiveFillsContinueTheStream) {
  Generator a(77), b(77);
  Tensor x1 = RandUniform({300}, 0, 1, DType::kF64, Device::CPU(), &a);
  Tensor x2 = RandUniform({200}, 0, 1, DType::kF64, Device::CPU(), &a);
  EXPECT_EQ(a.offset(), 500u);
  Tensor all = RandUniform({500}, 0, 1, DType::kF64, Device::CPU(), &b);
  std::vector<double> joined = x1.ToDoubles();
  for (double v : x2.ToDoubles()) joined.push_back(v);
  EXPECT_EQ(joined, all.ToDoubles());
  // Restoring the offset repeats the numbers (what checkpointing relies on).
  a.SetOffset(300);
  EXPECT_EQ(RandUniform({200}, 0, 1, DType::kF64, Device::CPU(), &a).ToDoubles(), x2.ToDoubles());
  // Normal fills reserve counters the same way.
  Generator c(77);
  RandNormal({10}, 0, 1, DType::kF32, Device::CPU(), &c);
  EXPECT_EQ(c.offset(), 10u);
  // A private generator leaves the default one alone.
  const uint64_t default_offset = DefaultGenerator().offset();
  RandUniform({10}, 0, 1, DType::kF32, Device::CPU(), &c);
  EXPECT_EQ(DefaultGenerator().offset(), default_offset);
  RandUniform({10}, 0, 1);
  EXPECT_EQ(DefaultGenerator().offset(), default_offset + 10);
}

TEST(GeneratorTest, ConcurrentReservationsAreDisjoint) {
  Generator g(1);
  std::vector<uint64_t> firsts[2];
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&g, &firsts, t] {
      for (int i = 0; i < 5000; ++i) firsts[t].push_back(g.Reserve(3));
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(g.offset(), 30000u);
  std::set<uint64_t> all(firsts[0].begin(), firsts[0].end());
  all.insert(firsts[1].begin(), firsts[1].end());
  EXPECT_EQ(all.size(), 10000u);
  for (uint64_t f : all) EXPECT_EQ(f % 3, 0u);
}

}  // namespace
}  // namespace loom
