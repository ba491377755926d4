// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3").
//
// Counter-based: the numbers for counter n depend only on (seed, n), so any
// device and any split of the work produce identical values. Loom gives
// element i of a random fill the counter (offset + i). Usable from host and
// device code.
#ifndef LOOM_RUNTIME_PHILOX_H_
#define LOOM_RUNTIME_PHILOX_H_

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define LOOM_HOST_DEVICE __host__ __device__
#else
#define LOOM_HOST_DEVICE
#endif

namespace loom::philox {

struct Block {
  uint32_t x[4];
};

LOOM_HOST_DEVICE inline void MulHiLo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = uint64_t(a) * uint64_t(b);
  *hi = uint32_t(p >> 32);
  *lo = uint32_t(p);
}

// Philox4x32 with 10 rounds on a 128-bit counter and a 64-bit key.
LOOM_HOST_DEVICE inline Block Philox4x32_10(Block ctr, uint32_t k0, uint32_t k1) {
  uint32_t c0 = ctr.x[0], c1 = ctr.x[1], c2 = ctr.x[2], c3 = ctr.x[3];
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    MulHiLo(0xD2511F53u, c0, &hi0, &lo0);
    MulHiLo(0xCD9E8D57u, c2, &hi1, &lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// The 4 x 32 random bits of counter `n` under `seed`.
LOOM_HOST_DEVICE inline Block Generate(uint64_t seed, uint64_t n) {
  return Philox4x32_10({{uint32_t(n), uint32_t(n >> 32), 0u, 0u}}, uint32_t(seed), uint32_t(seed >> 32));
}

// Uniform in [0, 1) with 24 random bits (exact in f32).
LOOM_HOST_DEVICE inline float Uniform(uint64_t seed, uint64_t n) {
  return float(Generate(seed, n).x[0] >> 8) * (1.0f / 16777216.0f);
}

// Standard normal by Box-Muller on lanes 0 and 1, computed in double so that
// host and device agree to the last f32 bit.
LOOM_HOST_DEVICE inline double Normal(uint64_t seed, uint64_t n) {
  const Block b = Generate(seed, n);
  const double u1 = (double(b.x[0]) + 1.0) * (1.0 / 4294967296.0);  // (0, 1]
  const double u2 = double(b.x[1]) * (1.0 / 4294967296.0);          // [0, 1)
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

}  // namespace loom::philox

#endif  // LOOM_RUNTIME_PHILOX_H_
