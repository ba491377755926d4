// The CUDA SwiGLU kernels under the emulator against the host reference
// (swiglu_reference.h, bit for bit: same formula, same host expf) and the CPU
// backend: every dtype, vector and scalar paths, the fused gate_up layout
// (strided halves of one matrix), in-place gradients and saturating inputs.
#include "kernels/cuda/swiglu.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/swiglu_reference.h"
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
using kernel_testing::Tolerance;
using ::testing::HasSubstr;

struct Shape {
  int64_t rows, cols;
};

// A single element, scalar rows, contiguous rows merged into one, rows of many vectors.
const Shape kShapes[] = {{1, 1}, {3, 7}, {4, 16}, {3, 20}, {7, 1000}};

// Gate values over the whole range silu sees, including saturation (exp(-x) = inf).
template <typename T>
std::vector<T> GateValues(size_t n, uint64_t seed) {
  std::vector<T> g = RandomValues<T>(n, seed, -8.0, 8.0);
  const double extremes[] = {0.0, -100.0, 100.0, -1e4, 1e4, -0.5};
  for (size_t i = 0; i < n && i < 6; ++i) g[i * 3 % n] = FromDouble<T>(extremes[i]);
  return g;
}

// [rows, cols] views into `buf` at row stride `stride`, starting at `offset`.
template <typename T>
std::vector<T> Dense(const std::vector<T>& buf, Shape s, int64_t stride, int64_t offset) {
  std::vector<T> out(size_t(s.rows * s.cols));
  for (int64_t r = 0; r < s.rows; ++r) {
    for (int64_t c = 0; c < s.cols; ++c)
      out[size_t(r * s.cols + c)] = buf[size_t(offset + r * stride + c)];
  }
  return out;
}

template <typename T>
void Place(std::vector<T>& buf, const std::vector<T>& dense, Shape s, int64_t stride,
           int64_t offset) {
  for (int64_t r = 0; r < s.rows; ++r) {
    for (int64_t c = 0; c < s.cols; ++c)
      buf[size_t(offset + r * stride + c)] = dense[size_t(r * s.cols + c)];
  }
}

// fused: gate and up are the halves of one [rows, 2 * cols] matrix (as a fused
// gate_up projection writes them); otherwise separate contiguous matrices.
template <typename T>
void CheckForward(Shape s, bool fused) {
  SCOPED_TRACE(absl::StrCat(DTypeName(DTypeOf<T>::value), " ", s.rows, "x", s.cols,
                            fused ? " fused gate_up" : ""));
  const size_t n = size_t(s.rows * s.cols);
  const std::vector<T> gate = GateValues<T>(n, 1), up = RandomValues<T>(n, 2, -3.0, 3.0);
  std::vector<T> want(n);
  reference::SwiGluForwardReference(gate.data(), up.data(), int64_t(n), want.data());
  const int64_t in_stride = fused ? 2 * s.cols : s.cols;
  std::vector<T> gate_up(size_t(s.rows * in_stride * (fused ? 1 : 2)));
  const int64_t up_offset = fused ? s.cols : s.rows * s.cols;
  Place(gate_up, gate, s, in_stride, 0);
  Place(gate_up, up, s, in_stride, up_offset);
  for (const Schedule& schedule : Schedules(2)) {
    SCOPED_TRACE(schedule.Name());
    emu::ScopedOptions o(schedule.options);
    std::vector<T> out(n, FromDouble<T>(NAN));
    const SwiGluArgs a{.dtype = DTypeOf<T>::value,
                       .rows = s.rows,
                       .cols = s.cols,
                       .gate = gate_up.data(),
                       .gate_stride = in_stride,
                       .up = gate_up.data() + up_offset,
                       .up_stride = in_stride,
                       .out = out.data(),
                       .out_stride = s.cols};
    const absl::Status st = LaunchSwiGluForward(a, nullptr);
    ASSERT_TRUE(st.ok()) << st;
    ExpectBitIdentical(out, want, "out");
  }
}

template <typename T>
void CheckBackward(Shape s, bool in_place) {
  SCOPED_TRACE(absl::StrCat(DTypeName(DTypeOf<T>::value), " ", s.rows, "x", s.cols,
                            in_place ? " in place" : ""));
  const size_t n = size_t(s.rows * s.cols);
  const std::vector<T> gate = GateValues<T>(n, 3), up = RandomValues<T>(n, 4, -3.0, 3.0),
                       gout = RandomValues<T>(n, 5);
  std::vector<T> want_gg(n), want_gu(n);
  reference::SwiGluBackwardReference(gate.data(), up.data(), gout.data(), int64_t(n),
                                     want_gg.data(), want_gu.data());
  // Padded rows (stride cols + 8) keep vectors aligned but forbid merging rows.
  const int64_t stride = s.rows > 1 ? s.cols + 8 : s.cols;
  for (const Schedule& schedule : Schedules(2)) {
    SCOPED_TRACE(schedule.Name());
    emu::ScopedOptions o(schedule.options);
    std::vector<T> g(size_t(s.rows * stride)), u(g.size()), dy(g.size());
    Place(g, gate, s, stride, 0);
    Place(u, up, s, stride, 0);
    Place(dy, gout, s, stride, 0);
    std::vector<T> gg(in_place ? 0 : g.size(), FromDouble<T>(NAN)), gu = gg;
    const SwiGluBackwardArgs a{.dtype = DTypeOf<T>::value,
                               .rows = s.rows,
                               .cols = s.cols,
                               .gate = g.data(),
                               .gate_stride = stride,
                               .up = u.data(),
                               .up_stride = stride,
                               .gout = dy.data(),
                               .gout_stride = stride,
                               .ggate = in_place ? g.data() : gg.data(),
                               .ggate_stride = stride,
                               .gup = in_place ? u.data() : gu.data(),
                               .gup_stride = stride};
    const absl::Status st = LaunchSwiGluBackward(a, nullptr);
    ASSERT_TRUE(st.ok()) << st;
    ExpectBitIdentical(Dense(in_place ? g : gg, s, stride, 0), want_gg, "ggate");
    ExpectBitIdentical(Dense(in_place ? u : gu, s, stride, 0), want_gu, "gup");
  }
}

template <typename T>
class SwiGluEmuTest : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double, BFloat16, Float16>;
TYPED_TEST_SUITE(SwiGluEmuTest, FloatTypes);

TYPED_TEST(SwiGluEmuTest, ForwardMatchesReference) {
  for (Shape s : kShapes) CheckForward<TypeParam>(s, false);
  for (Shape s : kShapes) CheckForward<TypeParam>(s, true);
}

TYPED_TEST(SwiGluEmuTest, BackwardMatchesReference) {
  for (Shape s : kShapes) CheckBackward<TypeParam>(s, false);
  CheckBackward<TypeParam>({5, 24}, true);
  CheckBackward<TypeParam>({3, 7}, true);
}

TEST(SwiGluEmuTest, MatchesCpuBackend) {
  const int64_t rows = 6, cols = 40;
  const Tensor gate =
      Tensor::FromDoubles(RandomValues<double>(rows * cols, 1, -6, 6), {rows, cols}, DType::kBF16);
  const Tensor up =
      Tensor::FromDoubles(RandomValues<double>(rows * cols, 2, -2, 2), {rows, cols}, DType::kBF16);
  const Tensor gout =
      Tensor::FromDoubles(RandomValues<double>(rows * cols, 3), {rows, cols}, DType::kBF16);
  cpu::CpuBackend cpu;
  const Tensor out = Tensor::Empty({rows, cols}, DType::kBF16);
  const Tensor gg = Tensor::Empty({rows, cols}, DType::kBF16);
  const Tensor gu = Tensor::Empty({rows, cols}, DType::kBF16);
  cpu.SwiGluForward(gate, up, out);
  cpu.SwiGluBackward(gate, up, gout, gg, gu);
  auto host = [](const Tensor& t) {
    const BFloat16* p = static_cast<const BFloat16*>(t.raw_data());
    return std::vector<BFloat16>(p, p + t.numel());
  };
  std::vector<BFloat16> o(rows * cols), dg(rows * cols), du(rows * cols);
  ASSERT_TRUE(LaunchSwiGluForward({.dtype = DType::kBF16,
                                   .rows = rows,
                                   .cols = cols,
                                   .gate = gate.raw_data(),
                                   .gate_stride = cols,
                                   .up = up.raw_data(),
                                   .up_stride = cols,
                                   .out = o.data(),
                                   .out_stride = cols},
                                  nullptr)
                  .ok());
  ASSERT_TRUE(LaunchSwiGluBackward({.dtype = DType::kBF16,
                                    .rows = rows,
                                    .cols = cols,
                                    .gate = gate.raw_data(),
                                    .gate_stride = cols,
                                    .up = up.raw_data(),
                                    .up_stride = cols,
                                    .gout = gout.raw_data(),
                                    .gout_stride = cols,
                                    .ggate = dg.data(),
                                    .ggate_stride = cols,
                                    .gup = du.data(),
                                    .gup_stride = cols},
                                   nullptr)
                  .ok());
  ExpectBitIdentical(o, host(out), "out vs CPU");
  ExpectBitIdentical(du, host(gu), "gup vs CPU");
  // The CPU build lets g++ fuse 1 + x * (1 - s) into an FMA: the last bit of f32 may differ
  // before rounding to bf16.
  ExpectAllClose(dg, host(gg), Tolerance<BFloat16>(), "ggate vs CPU");
}

TEST(SwiGluEmuTest, RejectsBadArguments) {
  float buf[64];
  const SwiGluArgs ok{.dtype = DType::kF32,
                      .rows = 2,
                      .cols = 8,
                      .gate = buf,
                      .gate_stride = 8,
                      .up = buf,
                      .up_stride = 8,
                      .out = buf,
                      .out_stride = 8};
  EXPECT_TRUE(LaunchSwiGluForward(ok, nullptr).ok());
  SwiGluArgs a = ok;
  a.up = nullptr;
  EXPECT_THAT(std::string(LaunchSwiGluForward(a, nullptr).message()),
              HasSubstr("SwiGluForward: up is null"));
  a = ok;
  a.out_stride = 5;
  EXPECT_THAT(std::string(LaunchSwiGluForward(a, nullptr).message()),
              HasSubstr("out row stride 5 is less than cols 8"));
  a = ok;
  a.dtype = DType::kBool;
  EXPECT_THAT(std::string(LaunchSwiGluForward(a, nullptr).message()),
              HasSubstr("dtype bool is not floating"));
  a = ok;
  a.rows = -2;
  EXPECT_TRUE(absl::IsInvalidArgument(LaunchSwiGluForward(a, nullptr)));
  const SwiGluBackwardArgs b{.dtype = DType::kF32,
                             .rows = 2,
                             .cols = 8,
                             .gate = buf,
                             .gate_stride = 8,
                             .up = buf,
                             .up_stride = 8,
                             .gout = buf,
                             .gout_stride = 8,
                             .ggate = nullptr,
                             .ggate_stride = 8,
                             .gup = buf,
                             .gup_stride = 8};
  EXPECT_THAT(std::string(LaunchSwiGluBackward(b, nullptr).message()),
              HasSubstr("SwiGluBackward: ggate is null"));
  EXPECT_TRUE(LaunchSwiGluBackward({.dtype = DType::kF32, .rows = 0, .cols = 8}, nullptr).ok());
}

}  // namespace
}  // namespace loom::cuda_emu
