// bf16 / f16 conversions against a reference that rounds in double
// arithmetic (scale to an integer count of quanta, round half to even) and
// decodes bit fields with ldexp, independent of the bit tricks in half.h.
#include "runtime/half.h"

#include <cfenv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace loom {
namespace {

struct Format {
  const char* name;
  int mantissa_bits;  // explicit fraction bits
  int exponent_bits;
  int min_exponent() const { return 2 - (1 << (exponent_bits - 1)); }  // of normals
  int max_exponent() const { return (1 << (exponent_bits - 1)) - 1; }
  double max_finite() const {
    return std::ldexp(2.0 - std::ldexp(1.0, -mantissa_bits), max_exponent());
  }
};

constexpr Format kBf16{"bf16", 7, 8};
constexpr Format kF16{"f16", 10, 5};

// Value of a 16-bit pattern in `f`, decoded field by field.
double Decode(const Format& f, uint16_t bits) {
  const int exp_field = (bits >> f.mantissa_bits) & ((1 << f.exponent_bits) - 1);
  const int man = bits & ((1 << f.mantissa_bits) - 1);
  const double sign = (bits & 0x8000) ? -1.0 : 1.0;
  if (exp_field == (1 << f.exponent_bits) - 1) {
    return man == 0 ? sign * std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::quiet_NaN();
  }
  if (exp_field == 0) return sign * std::ldexp(double(man), f.min_exponent() - f.mantissa_bits);
  return sign * std::ldexp(1.0 + std::ldexp(double(man), -f.mantissa_bits),
                           exp_field - (1 << (f.exponent_bits - 1)) + 1);
}

// `x` rounded to the nearest value of `f` (ties to even), infinite on
// overflow. NaN stays NaN.
double RoundTo(const Format& f, double x) {
  if (std::isnan(x) || std::isinf(x) || x == 0) return x;
  const int e = std::max(std::ilogb(x), f.min_exponent());
  const double quantum = std::ldexp(1.0, e - f.mantissa_bits);
  // x / quantum is exact (a power-of-two scaling); nearbyint rounds half to even.
  const double r = std::nearbyint(std::fabs(x) / quantum) * quantum;
  const double mag = r > f.max_finite() ? std::numeric_limits<double>::infinity() : r;
  return std::copysign(mag, x);
}

// Checks that the 16-bit `bits` converted from float `in` encode RoundTo(in).
void ExpectRoundsCorrectly(const Format& f, float in, uint16_t bits) {
  const double want = RoundTo(f, double(in));
  const double got = Decode(f, bits);
  if (std::isnan(want)) {
    EXPECT_TRUE(std::isnan(got)) << f.name << " of NaN 0x" << std::hex << FloatBits(in)
                                 << " gave 0x" << bits;
    return;
  }
  EXPECT_EQ(got, want) << f.name << " of " << in << " (0x" << std::hex << FloatBits(in)
                       << ") gave 0x" << bits;
  EXPECT_EQ(std::signbit(got), std::signbit(want)) << f.name << " sign of " << in;
}

std::vector<float> EdgeValues() {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {
      0.0f,
      -0.0f,
      inf,
      -inf,
      std::numeric_limits<float>::max(),
      std::numeric_limits<float>::min(),
      std::numeric_limits<float>::denorm_min(),
      BitsToFloat(0x007fffffu),  // largest float subnormal
      BitsToFloat(0x00008000u),  // float subnormal halfway for bf16
      BitsToFloat(0x00018000u),  // halfway, odd neighbour: rounds up
      BitsToFloat(0x7f7f8000u),  // bf16 max + half ulp: overflows (ties to even)
      BitsToFloat(0x7f7f7fffu),  // just below: bf16 max
      BitsToFloat(0x7f7f0000u),  // bf16 max
      1.0f + 0x1p-8f,            // bf16 halfway, rounds down to even
      1.0f + 3 * 0x1p-8f,        // bf16 halfway, rounds up to even
      1.0f + 0x1p-11f,           // f16 halfway, down
      1.0f + 3 * 0x1p-11f,       // f16 halfway, up
      65504.0f,
      65519.0f,
      65520.0f,
      65536.0f,
      70000.0f,
      -65520.0f,
      0x1p-14f,             // f16 min normal
      0x1p-14f - 0x1p-25f,  // f16 just below min normal, rounds to it
      0x1p-24f,             // f16 min subnormal
      0x1p-25f,             // halfway to 0: rounds to +0
      0x1.8p-25f,           // above halfway: min subnormal
      3 * 0x1p-25f,         // halfway between 1 and 2 subnormal quanta: to 2
      5 * 0x1p-25f,         // halfway between 2 and 3: to 2
      0x1p-26f,
      -0x1p-26f,
      0x3ffp-24f,
      0x7ffp-25f,
      BitsToFloat(0x7f800001u),
      BitsToFloat(0xff800001u),
      BitsToFloat(0x7fc00000u),
      BitsToFloat(0xffffffffu),
      BitsToFloat(0x7fbfffffu),
  };
  return v;
}

TEST(HalfTest, RoundingModeIsToNearest) { ASSERT_EQ(std::fegetround(), FE_TONEAREST); }

TEST(HalfTest, DecodeEveryPattern) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const uint16_t h = uint16_t(b);
    const double want_bf = Decode(kBf16, h), want_f16 = Decode(kF16, h);
    const float got_bf = float(BFloat16::FromBits(h)), got_f16 = float(Float16::FromBits(h));
    if (std::isnan(want_bf)) {
      EXPECT_TRUE(std::isnan(got_bf)) << std::hex << b;
    } else {
      EXPECT_EQ(double(got_bf), want_bf) << std::hex << b;
      EXPECT_EQ(std::signbit(got_bf), std::signbit(want_bf)) << std::hex << b;
    }
    if (std::isnan(want_f16)) {
      EXPECT_TRUE(std::isnan(got_f16)) << std::hex << b;
    } else {
      EXPECT_EQ(double(got_f16), want_f16) << std::hex << b;
      EXPECT_EQ(std::signbit(got_f16), std::signbit(want_f16)) << std::hex << b;
    }
  }
}

TEST(HalfTest, RoundTripEveryPattern) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const uint16_t h = uint16_t(b);
    const BFloat16 bf(float(BFloat16::FromBits(h)));
    const Float16 f16(float(Float16::FromBits(h)));
    if (std::isnan(Decode(kBf16, h))) {
      EXPECT_TRUE(std::isnan(float(bf))) << std::hex << b;
    } else {
      EXPECT_EQ(bf.bits, h) << std::hex << b;
    }
    if (std::isnan(Decode(kF16, h))) {
      EXPECT_TRUE(std::isnan(float(f16))) << std::hex << b;
    } else {
      EXPECT_EQ(f16.bits, h) << std::hex << b;
    }
  }
}

TEST(HalfTest, EdgeValuesRoundToNearestEven) {
  for (float x : EdgeValues()) {
    ExpectRoundsCorrectly(kBf16, x, BFloat16::FromFloat(x));
    ExpectRoundsCorrectly(kF16, x, Float16::FromFloat(x));
  }
  // Spot checks of the reference itself.
  EXPECT_EQ(RoundTo(kF16, 65519.0), 65504.0);
  EXPECT_TRUE(std::isinf(RoundTo(kF16, 65520.0)));
  EXPECT_EQ(RoundTo(kF16, 0x1p-25), 0.0);
  EXPECT_EQ(RoundTo(kF16, 3 * 0x1p-25), 0x1p-23);
  EXPECT_EQ(RoundTo(kBf16, 1.0 + 0x1p-8), 1.0);
  EXPECT_EQ(RoundTo(kBf16, 1.0 + 3 * 0x1p-8), 1.0 + 0x1p-6);
  EXPECT_EQ(kF16.max_finite(), 65504.0);
}

TEST(HalfTest, StrideThroughAllFloatPatterns) {
  // 4099 is odd, so the walk visits every residue class of the low bits.
  int64_t checked = 0;
  for (uint64_t b = 0; b <= 0xffffffffull; b += 4099) {
    const float x = BitsToFloat(uint32_t(b));
    ExpectRoundsCorrectly(kBf16, x, BFloat16::FromFloat(x));
    ExpectRoundsCorrectly(kF16, x, Float16::FromFloat(x));
    ++checked;
    if (::testing::Test::HasFailure()) break;  // one report is enough
  }
  EXPECT_GT(checked, 1000000);
}

TEST(HalfTest, NeighboursOfEveryHalfwayPoint) {
  // For every pair of adjacent finite 16-bit values: the midpoint and the
  // floats right next to it (the only inputs where rounding can go wrong).
  for (const Format* f : {&kBf16, &kF16}) {
    // Up to the largest finite value (the overflow threshold is an edge value).
    const uint32_t last = f == &kBf16 ? 0x7f7fu : 0x7bffu;
    for (uint32_t b = 0; b < last; ++b) {
      const double lo = Decode(*f, uint16_t(b));
      const double hi = Decode(*f, uint16_t(b + 1));
      const float mid = float((lo + hi) / 2);  // exact: 16-bit midpoints fit a float
      ASSERT_EQ(double(mid), (lo + hi) / 2);
      for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
        for (float s : {x, -x}) {
          const uint16_t bits = f == &kBf16 ? BFloat16::FromFloat(s) : Float16::FromFloat(s);
          ExpectRoundsCorrectly(*f, s, bits);
        }
      }
      if (::testing::Test::HasFailure()) return;
    }
  }
}

}  // namespace
}  // namespace loom
