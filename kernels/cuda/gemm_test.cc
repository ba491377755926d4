// LaunchGemm under the emulator against the plain reference: every dtype
// pair, all four transpose combinations, both tensor-core tiles, aligned
// (cp.async) and unaligned (plain load) operands, edges that are not tile
// multiples, batches with a shared operand, alpha/beta accumulation, k = 0,
// and argument errors.
#include "kernels/cuda/gemm.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/gemm_internal.h"
#include "kernels/cuda/gemm_reference.h"
#include "kernels/cuda/testing/host_buffer.h"
#include "kernels/cuda/testing/schedules.h"

namespace loom::cuda_emu {
namespace {

using kernel_testing::HostBuffer;
using kernel_testing::Schedule;
using kernel_testing::Schedules;
using ::testing::HasSubstr;

struct Case {
  DType input, output;
  int64_t batch, m, n, k;
  bool trans_a, trans_b;
  int64_t pad = 0;       // extra row stride, to test ld > cols and alignment
  bool share_b = false;  // batch_stride_b = 0
  float alpha = 1.0f, beta = 0.0f;
  std::string Name() const {
    return absl::StrCat(DTypeName(input), "->", DTypeName(output), " b", batch, " ", m, "x", n, "x",
                        k, trans_a ? " At" : "", trans_b ? " Bt" : "", " pad", pad,
                        share_b ? " shared-B" : "", " alpha ", alpha, " beta ", beta);
  }
};

// The worst error relative to max(1, |reference|) of k-term dot products.
double GemmTolerance(DType out) {
  switch (out) {
    case DType::kF64:
      return 1e-12;
    case DType::kF32:
      return 2e-5;
    case DType::kF16:
      return 2e-3;
    default:
      return 1e-2;
  }
}

// Runs the case (with `tile` forced for 16-bit inputs) and returns the worst
// error relative to max(1, |reference|); NaN if any output is NaN.
double RunCase(const Case& c, gemm_internal::Tile tile, uint32_t seed) {
  const int64_t a_rows = c.trans_a ? c.k : c.m, a_cols = c.trans_a ? c.m : c.k;
  const int64_t b_rows = c.trans_b ? c.n : c.k, b_cols = c.trans_b ? c.k : c.n;
  const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldo = c.n + c.pad;
  const int64_t sa = a_rows * lda, sb = c.share_b ? 0 : b_rows * ldb, so = c.m * ldo;
  HostBuffer a(c.input, c.batch * sa), b(c.input, c.share_b ? b_rows * ldb : c.batch * sb),
      out(c.output, c.batch * so);
  a.FillRandom(seed);
  b.FillRandom(seed + 1);
  // beta == 0 must not read out: out keeps HostBuffer's NaN, which would poison the result.
  if (c.beta != 0) out.FillRandom(seed + 2);
  std::vector<double> expected(size_t(c.batch * c.m * c.n));
  for (int64_t bi = 0; bi < c.batch; ++bi) {
    for (int64_t i = 0; i < c.m; ++i) {
      for (int64_t j = 0; j < c.n; ++j) {
        expected[size_t((bi * c.m + i) * c.n + j)] = out.Get(bi * so + i * ldo + j);
      }
    }
  }
  auto av = [&](int64_t bi, int64_t i, int64_t kk) {
    return a.Get(bi * sa + (c.trans_a ? kk * lda + i : i * lda + kk));
  };
  auto bv = [&](int64_t bi, int64_t kk, int64_t j) {
    return b.Get(bi * sb + (c.trans_b ? j * ldb + kk : kk * ldb + j));
  };
  reference::Gemm(c.batch, c.m, c.n, c.k, av, bv, c.alpha, c.beta, &expected);

  GemmProblem p{.input = c.input,
                .output = c.output,
                .batch = c.batch,
                .m = c.m,
                .n = c.n,
                .k = c.k,
                .a = a.data(),
                .lda = lda,
                .batch_stride_a = sa,
                .trans_a = c.trans_a,
                .b = b.data(),
                .ldb = ldb,
                .batch_stride_b = sb,
                .trans_b = c.trans_b,
                .out = out.data(),
                .ldo = ldo,
                .batch_stride_out = so,
                .alpha = c.alpha,
                .beta = c.beta};
  absl::Status s;
  if (c.input == DType::kBF16) {
    s = gemm_internal::LaunchTensorCoreGemmBf16(p, tile, nullptr);
  } else if (c.input == DType::kF16) {
    s = gemm_internal::LaunchTensorCoreGemmF16(p, tile, nullptr);
  } else {
    s = LaunchGemm(p, nullptr);
  }
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(out.PaddingIntact()) << "a write past the last output";
  double worst = 0;
  for (int64_t bi = 0; bi < c.batch; ++bi) {
    for (int64_t i = 0; i < c.m; ++i) {
      for (int64_t j = 0; j < c.n; ++j) {
        const double ref = expected[size_t((bi * c.m + i) * c.n + j)];
        const double got = out.Get(bi * so + i * ldo + j);
        if (std::isnan(got)) return NAN;
        worst = std::max(worst, std::abs(got - ref) / std::max(1.0, std::abs(ref)));
      }
      // The padding between rows is never written.
      for (int64_t j = c.n; j < ldo; ++j) {
        const double pad = out.Get(bi * so + i * ldo + j);
        if (c.beta == 0 && !std::isnan(pad)) return 1e9;
      }
    }
  }
  return worst;
}

void Check(const Case& c, gemm_internal::Tile tile, int seeds = 2) {
  for (const Schedule& schedule : Schedules(seeds)) {
    emu::ScopedOptions scoped(schedule.options);
    const double err = RunCase(c, tile, 7);
    EXPECT_LE(err, GemmTolerance(c.output))
        << c.Name() << (tile == gemm_internal::Tile::k128x128 ? " tile 128" : " tile 64") << ", "
        << schedule.Name();
  }
}

TEST(GemmTest, TensorCoreAllTransposesAlignedEdges) {
  // K multiple of 8 (cp.async path), M and N not multiples of the tile.
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      Check({DType::kBF16, DType::kF32, 1, 80, 72, 48, ta, tb}, gemm_internal::Tile::k64x64);
    }
  }
}

TEST(GemmTest, TensorCoreLargeTile) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      Check({DType::kBF16, DType::kF32, 1, 136, 130, 40, ta, tb}, gemm_internal::Tile::k128x128,
            /*seeds=*/1);
    }
  }
}

TEST(GemmTest, TensorCoreUnalignedOperandsUsePlainLoads) {
  // Odd K and odd leading dimensions: rows are not 16-byte aligned.
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      Check({DType::kF16, DType::kF32, 1, 19, 23, 37, ta, tb, /*pad=*/1},
            gemm_internal::Tile::k64x64);
    }
  }
}

TEST(GemmTest, SixteenBitOutputsAlphaBetaAndTinyShapes) {
  Check({DType::kBF16, DType::kBF16, 1, 33, 40, 24, false, true, 8, false, 0.5f, 0.0f},
        gemm_internal::Tile::k64x64);
  Check({DType::kF16, DType::kF16, 1, 40, 33, 16, true, false, 0, false, 1.0f, 1.0f},
        gemm_internal::Tile::k64x64);
  Check({DType::kBF16, DType::kF32, 1, 1, 1, 1, false, false}, gemm_internal::Tile::k64x64);
  Check({DType::kBF16, DType::kF32, 1, 1, 9, 8, false, true}, gemm_internal::Tile::k64x64);
}

TEST(GemmTest, AccumulatesIntoAnF32Gradient) {
  // dW += dy^T @ x: the linear layer's weight gradient, beta = 1.
  Check({DType::kBF16, DType::kF32, 1, 48, 40, 72, /*ta=*/true, false, 0, false, 1.0f, 1.0f},
        gemm_internal::Tile::k64x64);
}

TEST(GemmTest, BatchedWithASharedOperand) {
  Check({DType::kBF16, DType::kF32, 3, 24, 40, 32, false, true, 0, /*share_b=*/true},
        gemm_internal::Tile::k64x64);
}

TEST(GemmTest, EmptyReductionScalesTheOutput) {
  Check({DType::kBF16, DType::kF32, 1, 20, 12, 0, false, false, 0, false, 1.0f, 0.5f},
        gemm_internal::Tile::k64x64);
  Check({DType::kF32, DType::kF32, 1, 20, 12, 0, false, false, 0, false, 1.0f, 0.0f},
        gemm_internal::Tile::k64x64);
}

TEST(GemmTest, SimtFloatAndDouble) {
  for (DType dt : {DType::kF32, DType::kF64}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        Check({dt, dt, 2, 70, 65, 33, ta, tb, 3, false, 0.75f, 0.25f}, gemm_internal::Tile::k64x64);
      }
    }
  }
}

TEST(GemmTest, ChoosesTheLargeTileOnlyForBigProducts) {
  GemmProblem p{.m = 4096, .n = 4096, .k = 4096};
  EXPECT_EQ(gemm_internal::ChooseTile(p), gemm_internal::Tile::k128x128);
  p.m = 256;
  p.n = 512;
  EXPECT_EQ(gemm_internal::ChooseTile(p), gemm_internal::Tile::k64x64);
}

TEST(GemmTest, RejectsBadArguments) {
  float buf[64];
  GemmProblem p{.input = DType::kF32,
                .output = DType::kF32,
                .m = 4,
                .n = 4,
                .k = 4,
                .a = buf,
                .lda = 4,
                .b = buf,
                .ldb = 4,
                .out = buf,
                .ldo = 4};
  EXPECT_TRUE(LaunchGemm(p, nullptr).ok());
  GemmProblem q = p;
  q.input = DType::kI32;
  EXPECT_THAT(std::string(LaunchGemm(q, nullptr).message()), HasSubstr("input dtype i32"));
  q = p;
  q.output = DType::kBF16;
  EXPECT_THAT(std::string(LaunchGemm(q, nullptr).message()), HasSubstr("output dtype bf16"));
  q = p;
  q.lda = 3;
  EXPECT_THAT(std::string(LaunchGemm(q, nullptr).message()), HasSubstr("lda = 3 is less than"));
  q = p;
  q.trans_b = true;
  q.ldb = 2;
  EXPECT_THAT(std::string(LaunchGemm(q, nullptr).message()), HasSubstr("ldb = 2"));
  q = p;
  q.b = nullptr;
  EXPECT_THAT(std::string(LaunchGemm(q, nullptr).message()), HasSubstr("b is null"));
  q = p;
  q.batch = 2;
  q.batch_stride_out = 4;
  EXPECT_THAT(std::string(LaunchGemm(q, nullptr).message()), HasSubstr("overlap"));
  q = p;
  q.m = 0;
  q.a = nullptr;
  EXPECT_TRUE(LaunchGemm(q, nullptr).ok());
}

}  // namespace
}  // namespace loom::cuda_emu
