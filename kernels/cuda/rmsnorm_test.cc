// The CUDA RMSNorm kernels under the emulator against the host reference
// (rmsnorm_reference.h) and the CPU backend, for every dtype, row widths on
// both sides of the vector and warp/block boundaries, strided and in-place
// rows, and both scheduling policies.
#include "kernels/cuda/rmsnorm.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/rmsnorm_reference.h"
#include "kernels/cuda/testing/compare.h"
#include "kernels/cuda/testing/host_buffer.h"
#include "kernels/cuda/testing/schedules.h"
#include "runtime/tensor.h"

namespace loom::cuda_emu {
namespace {

using kernel_testing::ExpectAllClose;
using kernel_testing::ExpectBitIdentical;
using kernel_testing::RandomValues;
using kernel_testing::Schedule;
using kernel_testing::Schedules;
using kernel_testing::Tol;
using kernel_testing::Tolerance;
using ::testing::HasSubstr;

struct Shape {
  int64_t rows, dim;
};

// Scalar rows (odd dims), one vector per lane, a warp per row (several rows per
// block, rows not a multiple of it), a block per row with the cross-warp sum,
// and rows longer than 512 vectors (several chunks per thread).
const Shape kShapes[] = {{1, 1}, {3, 7}, {9, 33}, {5, 64}, {4, 40}, {2, 1000}, {3, 4100}};

template <typename T>
std::vector<T> Strided(const std::vector<T>& dense, int64_t rows, int64_t dim, int64_t stride,
                       double fill) {
  std::vector<T> out(size_t(rows * stride), FromDouble<T>(fill));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < dim; ++j) out[size_t(r * stride + j)] = dense[size_t(r * dim + j)];
  }
  return out;
}

template <typename T>
std::vector<T> Dense(const std::vector<T>& strided, int64_t rows, int64_t dim, int64_t stride) {
  std::vector<T> out(size_t(rows * dim));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < dim; ++j) out[size_t(r * dim + j)] = strided[size_t(r * stride + j)];
  }
  return out;
}

template <typename T>
void CheckForward(Shape s, int64_t x_stride, bool in_place, int64_t max_blocks = 0) {
  using S = compute_t<T>;
  SCOPED_TRACE(absl::StrCat(DTypeName(DTypeOf<T>::value), " rows ", s.rows, " dim ", s.dim,
                            " x_stride ", x_stride, in_place ? " in place" : "", " max_blocks ",
                            max_blocks));
  const std::vector<T> x = RandomValues<T>(size_t(s.rows * s.dim), 1, -2.0, 2.0);
  const std::vector<T> w = RandomValues<T>(size_t(s.dim), 2, 0.5, 1.5);
  std::vector<T> want_y(x.size());
  std::vector<S> want_rstd(size_t(s.rows));
  reference::RmsNormForwardReference(x.data(), w.data(), s.rows, s.dim, 1e-5, want_y.data(),
                                     want_rstd.data());
  for (const Schedule& schedule : Schedules(3)) {
    SCOPED_TRACE(schedule.Name());
    emu::ScopedOptions o(schedule.options);
    std::vector<T> xs = Strided(x, s.rows, s.dim, x_stride, 1e30);  // padding must not be read
    std::vector<T> y(in_place ? 0 : size_t(s.rows * s.dim), FromDouble<T>(NAN));
    std::vector<S> rstd(size_t(s.rows), S(NAN));
    const RmsNormForwardArgs a{.dtype = DTypeOf<T>::value,
                               .rows = s.rows,
                               .dim = s.dim,
                               .x = xs.data(),
                               .x_stride = x_stride,
                               .weight = w.data(),
                               .eps = 1e-5,
                               .y = in_place ? xs.data() : y.data(),
                               .y_stride = in_place ? x_stride : s.dim,
                               .rstd = rstd.data(),
                               .max_blocks = max_blocks};
    const absl::Status st = LaunchRmsNormForward(a, nullptr);
    ASSERT_TRUE(st.ok()) << st;
    ExpectAllClose(in_place ? Dense(xs, s.rows, s.dim, x_stride) : y, want_y, Tolerance<T>(), "y");
    ExpectAllClose(rstd, want_rstd, Tolerance<S>(), "rstd");
  }
}

template <typename T>
void CheckBackward(Shape s, int64_t stride, bool in_place) {
  using S = compute_t<T>;
  SCOPED_TRACE(absl::StrCat(DTypeName(DTypeOf<T>::value), " rows ", s.rows, " dim ", s.dim,
                            " stride ", stride, in_place ? " in place" : ""));
  const size_t n = size_t(s.rows * s.dim);
  const std::vector<T> x = RandomValues<T>(n, 3, -2.0, 2.0);
  const std::vector<T> gy = RandomValues<T>(n, 4);
  const std::vector<T> w = RandomValues<T>(size_t(s.dim), 5, 0.5, 1.5);
  std::vector<T> y(n);
  std::vector<S> rstd(size_t(s.rows));
  reference::RmsNormForwardReference(x.data(), w.data(), s.rows, s.dim, 1e-6, y.data(),
                                     rstd.data());
  std::vector<T> want_gx(n), want_gw(size_t(s.dim));
  reference::RmsNormBackwardReference(gy.data(), x.data(), w.data(), rstd.data(), s.rows, s.dim,
                                      want_gx.data(), want_gw.data());
  // gw sums `rows` products: allow for the summation order in the accumulation type.
  Tol gw_tol = Tolerance<T>();
  if constexpr (std::is_same_v<T, float>) gw_tol = {1e-4, 1e-5};
  std::vector<T> first_gw;
  for (const Schedule& schedule : Schedules(3)) {
    SCOPED_TRACE(schedule.Name());
    emu::ScopedOptions o(schedule.options);
    std::vector<T> gys = Strided(gy, s.rows, s.dim, stride, 1e30);
    const std::vector<T> xs = Strided(x, s.rows, s.dim, stride, 1e30);
    std::vector<T> gx(in_place ? 0 : size_t(s.rows * stride), FromDouble<T>(NAN));
    std::vector<T> gw(size_t(s.dim), FromDouble<T>(NAN));
    std::vector<unsigned char> workspace(
        RmsNormBackwardWorkspaceBytes(DTypeOf<T>::value, s.rows, s.dim) + 16, 0xFF);
    void* ws = workspace.data() + (16 - reinterpret_cast<uintptr_t>(workspace.data()) % 16) % 16;
    const RmsNormBackwardArgs a{.dtype = DTypeOf<T>::value,
                                .rows = s.rows,
                                .dim = s.dim,
                                .gy = gys.data(),
                                .gy_stride = stride,
                                .x = xs.data(),
                                .x_stride = stride,
                                .weight = w.data(),
                                .rstd = rstd.data(),
                                .gx = in_place ? gys.data() : gx.data(),
                                .gx_stride = stride,
                                .gw = gw.data(),
                                .workspace = ws};
    const absl::Status st = LaunchRmsNormBackward(a, nullptr);
    ASSERT_TRUE(st.ok()) << st;
    ExpectAllClose(Dense(in_place ? gys : gx, s.rows, s.dim, stride), want_gx, Tolerance<T>(),
                   "gx");
    ExpectAllClose(gw, want_gw, gw_tol, "gw");
    // Fixed reduction order: every policy and seed gives the same bits.
    if (first_gw.empty()) first_gw = gw;
    ExpectBitIdentical(gw, first_gw, "gw across runs");
  }
}

template <typename T>
class RmsNormEmuTest : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double, BFloat16, Float16>;
TYPED_TEST_SUITE(RmsNormEmuTest, FloatTypes);

TYPED_TEST(RmsNormEmuTest, ForwardMatchesReference) {
  for (Shape s : kShapes) CheckForward<TypeParam>(s, s.dim, false);
}

TYPED_TEST(RmsNormEmuTest, ForwardBlocksLoopOverRows) {
  // Blocks of one row (reusing the cross-warp scratch) and of four warp rows.
  CheckForward<TypeParam>({7, 1000}, 1000, false, 2);
  CheckForward<TypeParam>({23, 40}, 40, false, 2);
}

TYPED_TEST(RmsNormEmuTest, ForwardStridedAndInPlace) {
  CheckForward<TypeParam>({6, 48}, 56, false);  // vectorized strided rows
  CheckForward<TypeParam>({5, 48}, 51, false);  // a stride that forbids vectors
  CheckForward<TypeParam>({7, 1000}, 1000, true);
}

TYPED_TEST(RmsNormEmuTest, BackwardMatchesReference) {
  for (Shape s : kShapes) CheckBackward<TypeParam>(s, s.dim, false);
  // More rows than backward blocks: each block sums several rows (warp and block rows).
  CheckBackward<TypeParam>({300, 24}, 24, false);
  CheckBackward<TypeParam>({260, 136}, 136, false);
}

TYPED_TEST(RmsNormEmuTest, BackwardStridedAndInPlace) {
  CheckBackward<TypeParam>({6, 48}, 64, false);
  CheckBackward<TypeParam>({5, 40}, 43, true);
}

TEST(RmsNormEmuTest, BackwardWithMoreThan48KiBOfAccumulators) {
  CheckBackward<float>({2, 16384}, 16384, false);  // 64 KiB of f32 partial sums per block
}

TEST(RmsNormEmuTest, EmptyRows) {
  const RmsNormForwardArgs f{.dtype = DType::kF32, .rows = 0, .dim = 8};
  EXPECT_TRUE(LaunchRmsNormForward(f, nullptr).ok());
  // No rows: the weight gradient is a sum over nothing.
  std::vector<float> gw(8, NAN);
  const RmsNormBackwardArgs b{.dtype = DType::kF32, .rows = 0, .dim = 8, .gw = gw.data()};
  ASSERT_TRUE(LaunchRmsNormBackward(b, nullptr).ok());
  for (float v : gw) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(RmsNormBackwardWorkspaceBytes(DType::kF32, 0, 8), 0u);
}

TEST(RmsNormEmuTest, MatchesCpuBackend) {
  const int64_t rows = 12, dim = 72;
  const Tensor x =
      Tensor::FromDoubles(RandomValues<double>(rows * dim, 7, -3, 3), {rows, dim}, DType::kBF16);
  const Tensor w = Tensor::FromDoubles(RandomValues<double>(dim, 8, 0.5, 2), {dim}, DType::kBF16);
  const Tensor gy =
      Tensor::FromDoubles(RandomValues<double>(rows * dim, 9), {rows, dim}, DType::kBF16);
  cpu::CpuBackend cpu;
  const Tensor y = Tensor::Empty({rows, dim}, DType::kBF16);
  const Tensor rstd = Tensor::Empty({rows}, DType::kF32);
  cpu.RmsNormForward(x, w, 1e-5, y, rstd);
  const Tensor gx = Tensor::Empty({rows, dim}, DType::kBF16);
  const Tensor gw = Tensor::Empty({dim}, DType::kBF16);
  cpu.RmsNormBackward(gy, x, w, rstd, gx, gw);

  auto host = [](const Tensor& t) {
    const BFloat16* p = static_cast<const BFloat16*>(t.raw_data());
    return std::vector<BFloat16>(p, p + t.numel());
  };
  std::vector<BFloat16> cy(rows * dim), cgx(rows * dim), cgw(dim);
  std::vector<float> crstd(rows);
  std::vector<unsigned char> ws(RmsNormBackwardWorkspaceBytes(DType::kBF16, rows, dim) + 16);
  void* wsp = ws.data() + (16 - reinterpret_cast<uintptr_t>(ws.data()) % 16) % 16;
  ASSERT_TRUE(LaunchRmsNormForward({.dtype = DType::kBF16,
                                    .rows = rows,
                                    .dim = dim,
                                    .x = x.raw_data(),
                                    .x_stride = dim,
                                    .weight = w.raw_data(),
                                    .eps = 1e-5,
                                    .y = cy.data(),
                                    .y_stride = dim,
                                    .rstd = crstd.data()},
                                   nullptr)
                  .ok());
  ASSERT_TRUE(LaunchRmsNormBackward({.dtype = DType::kBF16,
                                     .rows = rows,
                                     .dim = dim,
                                     .gy = gy.raw_data(),
                                     .gy_stride = dim,
                                     .x = x.raw_data(),
                                     .x_stride = dim,
                                     .weight = w.raw_data(),
                                     .rstd = rstd.raw_data(),
                                     .gx = cgx.data(),
                                     .gx_stride = dim,
                                     .gw = cgw.data(),
                                     .workspace = wsp},
                                    nullptr)
                  .ok());
  ExpectAllClose(cy, host(y), Tolerance<BFloat16>(), "y vs CPU");
  const float* r = rstd.data<float>();
  ExpectAllClose(crstd, std::vector<float>(r, r + rows), Tolerance<float>(), "rstd vs CPU");
  ExpectAllClose(cgx, host(gx), Tolerance<BFloat16>(), "gx vs CPU");
  ExpectAllClose(cgw, host(gw), Tolerance<BFloat16>(), "gw vs CPU");
}

TEST(RmsNormEmuTest, RejectsBadArguments) {
  float buf[64];
  auto fwd = [&](RmsNormForwardArgs a) { return LaunchRmsNormForward(a, nullptr); };
  const RmsNormForwardArgs ok{.dtype = DType::kF32,
                              .rows = 2,
                              .dim = 8,
                              .x = buf,
                              .x_stride = 8,
                              .weight = buf,
                              .eps = 1e-5,
                              .y = buf,
                              .y_stride = 8,
                              .rstd = buf};
  EXPECT_TRUE(fwd(ok).ok());
  RmsNormForwardArgs a = ok;
  a.dtype = DType::kI32;
  EXPECT_THAT(std::string(fwd(a).message()), HasSubstr("dtype i32 is not floating"));
  a = ok;
  a.rows = -1;
  EXPECT_THAT(std::string(fwd(a).message()), HasSubstr("rows -1 and dim 8 must be >= 0"));
  a = ok;
  a.x_stride = 4;
  EXPECT_THAT(std::string(fwd(a).message()), HasSubstr("x row stride 4 is less than dim 8"));
  a = ok;
  a.weight = nullptr;
  EXPECT_THAT(std::string(fwd(a).message()), HasSubstr("RmsNormForward: weight is null"));
  a = ok;
  a.dim = 0;
  EXPECT_THAT(std::string(fwd(a).message()), HasSubstr("dim is 0 for 2 rows"));
  a = ok;
  a.eps = -1;
  EXPECT_TRUE(absl::IsInvalidArgument(fwd(a)));

  const RmsNormBackwardArgs bok{.dtype = DType::kF32,
                                .rows = 2,
                                .dim = 8,
                                .gy = buf,
                                .gy_stride = 8,
                                .x = buf,
                                .x_stride = 8,
                                .weight = buf,
                                .rstd = buf,
                                .gx = buf,
                                .gx_stride = 8,
                                .gw = buf};
  absl::Status st = LaunchRmsNormBackward(bok, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("workspace must be a 16-byte aligned buffer"));
  RmsNormBackwardArgs b = bok;
  b.dim = 60000;
  b.gy_stride = b.x_stride = b.gx_stride = 60000;
  st = LaunchRmsNormBackward(b, nullptr);
  EXPECT_THAT(std::string(st.message()), HasSubstr("dim 60000 needs 240000 bytes"));
}

}  // namespace
}  // namespace loom::cuda_emu
