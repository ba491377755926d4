// The emulated PTX instructions against their ISA definitions: ldmatrix
// register for register, mma against a double-precision matmul (from
// fragments built by hand and from the standard ldmatrix address recipes,
// which only agree with the matmul if both layouts are right), and cp.async
// group semantics.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/device/compat.h"

namespace loom::cuda_emu {
namespace {

using ::testing::HasSubstr;

uint16_t Bf16(float x) {
  __nv_bfloat16 b = __float2bfloat16(x);
  uint16_t u;
  std::memcpy(&u, &b, 2);
  return u;
}
float FromBf16(uint16_t u) {
  uint32_t w = uint32_t(u) << 16;
  float f;
  std::memcpy(&f, &w, 4);
  return f;
}
uint16_t F16(float x) { return __half_as_ushort(__float2half(x)); }
float FromF16(uint16_t u) { return __half2float(__ushort_as_half(u)); }

// ---- ldmatrix: smem holds 4 matrices of 8x8 u16 whose value encodes
// (matrix, row, col); lane 8m + r supplies row r of matrix m.
template <int N, bool Trans>
__global__ void LoadMatrices(const uint16_t* src, uint32_t* out) {
  uint16_t* s = DynamicShared<uint16_t>();
  for (int i = threadIdx.x; i < 4 * 64; i += 32) s[i] = src[i];
  __syncthreads();
  const int lane = threadIdx.x;
  // Rows stored with a stride of 8 elements: matrix m, row r at (m * 8 + r) * 8.
  uint32_t r[N];
  LdMatrix<N, Trans>(r, s + (lane % (8 * N)) * 8);
  for (int m = 0; m < N; ++m) out[lane * 4 + m] = r[m];
}

template <int N, bool Trans>
void CheckLdMatrix() {
  std::vector<uint16_t> src(256);
  for (int m = 0; m < 4; ++m) {
    for (int r = 0; r < 8; ++r) {
      for (int c = 0; c < 8; ++c) src[(m * 8 + r) * 8 + c] = uint16_t(m * 100 + r * 10 + c);
    }
  }
  std::vector<uint32_t> out(128, 0);
  ASSERT_TRUE(
      (Launch<&LoadMatrices<N, Trans>>({.grid = dim3(1), .block = dim3(32), .dynamic_smem = 512},
                                       src.data(), out.data()))
          .ok());
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, t = lane % 4;
    for (int m = 0; m < N; ++m) {
      // PTX ISA: without .trans a lane holds row g, columns 2t and 2t+1; with
      // .trans it holds column g, rows 2t and 2t+1.
      const int lo = Trans ? m * 100 + (2 * t) * 10 + g : m * 100 + g * 10 + 2 * t;
      const int hi = Trans ? m * 100 + (2 * t + 1) * 10 + g : m * 100 + g * 10 + 2 * t + 1;
      EXPECT_EQ(out[lane * 4 + m] & 0xFFFF, uint32_t(lo)) << "lane " << lane << " m " << m;
      EXPECT_EQ(out[lane * 4 + m] >> 16, uint32_t(hi)) << "lane " << lane << " m " << m;
    }
  }
}

TEST(PtxTest, LdMatrixX1) { CheckLdMatrix<1, false>(); }
TEST(PtxTest, LdMatrixX2) { CheckLdMatrix<2, false>(); }
TEST(PtxTest, LdMatrixX4) { CheckLdMatrix<4, false>(); }
TEST(PtxTest, LdMatrixX1Trans) { CheckLdMatrix<1, true>(); }
TEST(PtxTest, LdMatrixX2Trans) { CheckLdMatrix<2, true>(); }
TEST(PtxTest, LdMatrixX4Trans) { CheckLdMatrix<4, true>(); }

// ---- mma from fragments built directly with the ISA formulas.
template <bool kBf16>
__global__ void MmaDirect(const uint16_t* A /*16x16*/, const uint16_t* B /*16x8, [k][n]*/,
                          const float* C /*16x8*/, float* D) {
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  auto pack = [](uint16_t lo, uint16_t hi) { return uint32_t(lo) | (uint32_t(hi) << 16); };
  uint32_t a[4], b[2];
  for (int r = 0; r < 4; ++r) {
    const int row = g + 8 * (r & 1), col = 2 * t + 8 * (r >> 1);
    a[r] = pack(A[row * 16 + col], A[row * 16 + col + 1]);
  }
  for (int r = 0; r < 2; ++r) {
    const int k = 2 * t + 8 * r;
    b[r] = pack(B[k * 8 + g], B[(k + 1) * 8 + g]);
  }
  float c[4], d[4];
  for (int i = 0; i < 4; ++i) c[i] = C[(g + 8 * (i / 2)) * 8 + 2 * t + i % 2];
  if constexpr (kBf16) {
    Mma16816Bf16(d, a, b, c);
  } else {
    Mma16816F16(d, a, b, c);
  }
  for (int i = 0; i < 4; ++i) D[(g + 8 * (i / 2)) * 8 + 2 * t + i % 2] = d[i];
}

// ---- mma fed by ldmatrix with the standard address recipes: A row-major
// [m][k] by x4; B either as [n][k] (k contiguous) by x2, or as [k][n] by x2.trans.
template <bool kBTransposedInSmem>
__global__ void MmaFromSmem(const uint16_t* A, const uint16_t* B_kn, const float* C, float* D) {
  uint16_t* sa = DynamicShared<uint16_t>();  // 16x16
  uint16_t* sb = sa + 256;                   // [n][k] 8x16 or [k][n] 16x8
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  for (int i = lane; i < 256; i += 32) sa[i] = A[i];
  for (int i = lane; i < 128; i += 32) {
    const int k = i / 8, n = i % 8;
    if (kBTransposedInSmem) {
      sb[k * 8 + n] = B_kn[i];
    } else {
      sb[n * 16 + k] = B_kn[i];
    }
  }
  __syncthreads();
  uint32_t a[4], b[2];
  LdMatrix<4, false>(a, sa + (lane % 16) * 16 + 8 * (lane / 16));
  if (kBTransposedInSmem) {
    LdMatrix<2, true>(b, sb + (lane % 16) * 8);
  } else {
    LdMatrix<2, false>(b, sb + (lane % 8) * 16 + 8 * ((lane / 8) % 2));
  }
  float c[4], d[4];
  for (int i = 0; i < 4; ++i) c[i] = C[(g + 8 * (i / 2)) * 8 + 2 * t + i % 2];
  Mma16816Bf16(d, a, b, c);
  for (int i = 0; i < 4; ++i) D[(g + 8 * (i / 2)) * 8 + 2 * t + i % 2] = d[i];
}

struct MmaCase {
  std::vector<uint16_t> a, b;
  std::vector<float> c, expected;
};

MmaCase MakeCase(bool bf16, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  MmaCase m;
  m.a.resize(256);
  m.b.resize(128);
  m.c.resize(128);
  m.expected.resize(128);
  for (auto& x : m.a) x = bf16 ? Bf16(u(rng)) : F16(u(rng));
  for (auto& x : m.b) x = bf16 ? Bf16(u(rng)) : F16(u(rng));
  for (auto& x : m.c) x = u(rng);
  auto val = [&](uint16_t h) { return double(bf16 ? FromBf16(h) : FromF16(h)); };
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) {
      double acc = m.c[i * 8 + j];
      for (int k = 0; k < 16; ++k) acc += val(m.a[i * 16 + k]) * val(m.b[k * 8 + j]);
      m.expected[i * 8 + j] = float(acc);
    }
  }
  return m;
}

TEST(PtxTest, MmaMatchesMatmulFromFormulaFragments) {
  for (bool bf16 : {true, false}) {
    MmaCase m = MakeCase(bf16, 11);
    std::vector<float> d(128, NAN);
    auto launch =
        bf16 ? &Launch<&MmaDirect<true>, const uint16_t*, const uint16_t*, const float*, float*>
             : &Launch<&MmaDirect<false>, const uint16_t*, const uint16_t*, const float*, float*>;
    ASSERT_TRUE(
        launch({.grid = dim3(1), .block = dim3(32)}, m.a.data(), m.b.data(), m.c.data(), d.data())
            .ok());
    for (int i = 0; i < 128; ++i) EXPECT_NEAR(d[i], m.expected[i], 1e-5) << i;
  }
}

TEST(PtxTest, MmaMatchesMatmulThroughLdMatrixRecipes) {
  MmaCase m = MakeCase(true, 12);
  for (bool trans : {false, true}) {
    std::vector<float> d(128, NAN);
    auto launch =
        trans
            ? &Launch<&MmaFromSmem<true>, const uint16_t*, const uint16_t*, const float*, float*>
            : &Launch<&MmaFromSmem<false>, const uint16_t*, const uint16_t*, const float*, float*>;
    ASSERT_TRUE(launch({.grid = dim3(1), .block = dim3(32), .dynamic_smem = 1024}, m.a.data(),
                       m.b.data(), m.c.data(), d.data())
                    .ok());
    for (int i = 0; i < 128; ++i) EXPECT_NEAR(d[i], m.expected[i], 1e-5) << i << " trans " << trans;
  }
}

// ---- cp.async: groups retire oldest first; wait_group N leaves N pending.
__global__ void CpAsyncGroups(const float* src, float* seen) {
  float* s = DynamicShared<float>();
  // Three groups of one 16-byte copy each (thread 0 only), then an empty group.
  if (threadIdx.x == 0) {
    for (int g = 0; g < 3; ++g) {
      CpAsync16(s + 4 * g, src + 4 * g);
      CpAsyncCommit();
    }
    CpAsyncCommit();   // empty: complete at once
    CpAsyncWait<3>();  // retires group 0 only
    for (int g = 0; g < 3; ++g) seen[g] = s[4 * g];
    CpAsyncWait<1>();  // groups 1 and 2 (the empty group is the newest)
    for (int g = 0; g < 3; ++g) seen[3 + g] = s[4 * g];
    // A short copy: 8 of 16 bytes from src, the rest zero-filled.
    CpAsync16(s + 12, src + 12, 8);
    CpAsyncCommit();
    CpAsyncWait<0>();
    for (int i = 0; i < 4; ++i) seen[6 + i] = s[12 + i];
  }
}

TEST(PtxTest, CpAsyncGroupSemantics) {
  std::vector<float> src(16);
  for (int i = 0; i < 16; ++i) src[i] = float(i + 1);
  std::vector<float> seen(10, -1);
  ASSERT_TRUE(Launch<&CpAsyncGroups>({.grid = dim3(1), .block = dim3(32), .dynamic_smem = 256},
                                     src.data(), seen.data())
                  .ok());
  EXPECT_EQ(seen[0], 1.0f);
  EXPECT_TRUE(std::isnan(seen[1]));  // still in flight: poisoned
  EXPECT_TRUE(std::isnan(seen[2]));
  EXPECT_EQ(seen[3], 1.0f);
  EXPECT_EQ(seen[4], 5.0f);
  EXPECT_EQ(seen[5], 9.0f);
  EXPECT_EQ(seen[6], 13.0f);
  EXPECT_EQ(seen[7], 14.0f);
  EXPECT_EQ(seen[8], 0.0f);
  EXPECT_EQ(seen[9], 0.0f);
}

__global__ void CpAsyncNeverWaited(const float* src) {
  float* s = DynamicShared<float>();
  CpAsync16(s + 4 * threadIdx.x, src + 4 * threadIdx.x);
  CpAsyncCommit();
}

TEST(PtxTest, CopiesNeverWaitedOnAreWarnedAbout) {
  std::vector<float> src(128);
  ASSERT_TRUE(Launch<&CpAsyncNeverWaited>({.grid = dim3(1), .block = dim3(32), .dynamic_smem = 512},
                                          src.data())
                  .ok());
  ASSERT_FALSE(emu::LastLaunchStats().warnings.empty());
  EXPECT_THAT(emu::LastLaunchStats().warnings[0], HasSubstr("never waited on"));
}

}  // namespace
}  // namespace loom::cuda_emu
