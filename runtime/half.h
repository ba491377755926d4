// bfloat16 and IEEE half as plain 16-bit value types for host code.
//
// Conversions round to nearest even and keep NaN a NaN, matching
// __float2bfloat16 / __float2half on the GPU, so CPU and CUDA results agree
// bit for bit on the same float input. Arithmetic goes through float.
#ifndef LOOM_RUNTIME_HALF_H_
#define LOOM_RUNTIME_HALF_H_

#include <cstdint>
#include <cstring>

namespace loom {

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct BFloat16 {
  uint16_t bits = 0;

  BFloat16() = default;
  explicit BFloat16(float f) : bits(FromFloat(f)) {}
  explicit operator float() const { return BitsToFloat(uint32_t{bits} << 16); }

  static BFloat16 FromBits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
  static uint16_t FromFloat(float f) {
    uint32_t u = FloatBits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
    return uint16_t(u >> 16);
  }
};

struct Float16 {
  uint16_t bits = 0;

  Float16() = default;
  explicit Float16(float f) : bits(FromFloat(f)) {}
  explicit operator float() const { return ToFloat(bits); }

  static Float16 FromBits(uint16_t b) {
    Float16 h;
    h.bits = b;
    return h;
  }

  static uint16_t FromFloat(float f) {
    const uint32_t u = FloatBits(f);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);          // NaN
    if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);         // overflow -> inf
    if (abs < 0x38800000u) {                                         // subnormal or zero
      // Scale into the subnormal range; float addition rounds to nearest even.
      const float scaled = BitsToFloat(abs) + 0.5f;  // 0.5 = 2^-1: ulp becomes 2^-24
      return uint16_t(sign | (FloatBits(scaled) - 0x3f000000u));
    }
    uint32_t m = abs + 0xc8000fffu + ((abs >> 13) & 1u);  // rebias exponent, round
    return uint16_t(sign | (m >> 13));
  }

  static float ToFloat(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t man = h & 0x3ffu;
    if (exp == 0) {  // zero or subnormal: man * 2^-24
      const float v = float(man) * BitsToFloat(0x33800000u);
      return BitsToFloat(FloatBits(v) | sign);
    }
    if (exp == 31) return BitsToFloat(sign | 0x7f800000u | (man << 13));
    return BitsToFloat(sign | ((exp + 112u) << 23) | (man << 13));
  }
};

}  // namespace loom

#endif  // LOOM_RUNTIME_HALF_H_
