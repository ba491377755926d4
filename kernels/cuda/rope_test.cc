// The CUDA RoPE kernel under the emulator against the host reference
// (rope_reference.h) and the CPU backend: every dtype, vector and scalar
// paths, head counts that are not multiples of a thread's head group,
// strided (fused QKV) and in-place layouts, forward and inverse.
#include "kernels/cuda/rope.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/rope_reference.h"
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
  int64_t batch, seqlen, heads, head_dim;
};

template <typename C>
std::vector<C> InvFreq(int64_t head_dim, double theta = 10000.0) {
  std::vector<C> f(size_t(head_dim / 2));
  for (size_t i = 0; i < f.size(); ++i) f[i] = C(1.0 / std::pow(theta, 2.0 * double(i) / head_dim));
  return f;
}

std::vector<int64_t> Positions(const Shape& s) {
  std::vector<int64_t> p(size_t(s.batch * s.seqlen));
  for (size_t i = 0; i < p.size(); ++i) p[i] = int64_t((i * 7919) % 5003);
  if (!p.empty()) p.back() = 131071;  // a long-context position: large angles
  return p;
}

// Offsets of element (b, t, h, 0) in a layout with the given strides.
int64_t Offset(const RopeStrides& st, const Shape& s, int64_t tok, int64_t h) {
  return (tok / s.seqlen) * st.batch + (tok % s.seqlen) * st.token + h * st.head;
}

// A buffer holding `dense` [B, T, H, E] at strides `st`, `fill` elsewhere.
template <typename T>
std::vector<T> Scatter(const std::vector<T>& dense, const Shape& s, const RopeStrides& st,
                       double fill) {
  std::vector<T> buf(size_t(s.batch * st.batch), FromDouble<T>(fill));
  for (int64_t tok = 0; tok < s.batch * s.seqlen; ++tok) {
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t e = 0; e < s.head_dim; ++e) {
        buf[size_t(Offset(st, s, tok, h) + e)] =
            dense[size_t((tok * s.heads + h) * s.head_dim + e)];
      }
    }
  }
  return buf;
}

template <typename T>
std::vector<T> Gather(const std::vector<T>& buf, const Shape& s, const RopeStrides& st) {
  std::vector<T> dense(size_t(s.batch * s.seqlen * s.heads * s.head_dim));
  for (int64_t tok = 0; tok < s.batch * s.seqlen; ++tok) {
    for (int64_t h = 0; h < s.heads; ++h) {
      for (int64_t e = 0; e < s.head_dim; ++e) {
        dense[size_t((tok * s.heads + h) * s.head_dim + e)] =
            buf[size_t(Offset(st, s, tok, h) + e)];
      }
    }
  }
  return dense;
}

// Contiguous strides, or padded ones (`pad` elements after each head, token and batch row).
RopeStrides StridesOf(const Shape& s, int64_t pad) {
  RopeStrides st;
  st.head = s.head_dim + pad;
  st.token = s.heads * st.head + pad;
  st.batch = s.seqlen * st.token + pad;
  return st;
}

constexpr double kPadding = 4096.0;  // finite in every dtype

template <typename T>
void Check(const Shape& s, int64_t pad, bool in_place, bool inverse) {
  using C = compute_t<T>;
  SCOPED_TRACE(absl::StrCat(DTypeName(DTypeOf<T>::value), " [", s.batch, ", ", s.seqlen, ", ",
                            s.heads, ", ", s.head_dim, "] pad ", pad, in_place ? " in place" : "",
                            inverse ? " inverse" : ""));
  const std::vector<T> x =
      RandomValues<T>(size_t(s.batch * s.seqlen * s.heads * s.head_dim), 11, -2.0, 2.0);
  const std::vector<int64_t> pos = Positions(s);
  const std::vector<C> freq = InvFreq<C>(s.head_dim);
  std::vector<T> want(x.size());
  reference::RopeReference(x.data(), pos.data(), freq.data(), s.batch, s.seqlen, s.heads,
                           s.head_dim, inverse, want.data());
  const RopeStrides st = StridesOf(s, pad);
  for (const Schedule& schedule : Schedules(2)) {
    SCOPED_TRACE(schedule.Name());
    emu::ScopedOptions o(schedule.options);
    std::vector<T> xs = Scatter(x, s, st, kPadding);
    std::vector<T> out(in_place ? 0 : xs.size(), FromDouble<T>(-7.0));
    T* out_ptr = in_place ? xs.data() : out.data();
    const RopeArgs a{.dtype = DTypeOf<T>::value,
                     .batch = s.batch,
                     .seqlen = s.seqlen,
                     .heads = s.heads,
                     .head_dim = s.head_dim,
                     .x = xs.data(),
                     .x_strides = st,
                     .out = out_ptr,
                     .out_strides = st,
                     .positions = pos.data(),
                     .inv_freq = freq.data(),
                     .inverse = inverse};
    const absl::Status status = LaunchRope(a, nullptr);
    ASSERT_TRUE(status.ok()) << status;
    // The whole buffer: the view rotated, the padding around it untouched.
    const std::vector<T>& result = in_place ? xs : out;
    // The emulated kernel calls the host's cos and sin, like the reference: bit for bit.
    ExpectBitIdentical(result, Scatter(want, s, st, in_place ? kPadding : -7.0), "out");
  }
}

// Vector and scalar chunks, a single pair, heads not a multiple of 4, long rows.
const Shape kShapes[] = {{2, 3, 5, 16}, {1, 1, 1, 2}, {2, 5, 3, 12}, {1, 4, 9, 128}, {3, 2, 2, 64}};

template <typename T>
class RopeEmuTest : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double, BFloat16, Float16>;
TYPED_TEST_SUITE(RopeEmuTest, FloatTypes);

TYPED_TEST(RopeEmuTest, ForwardMatchesReference) {
  for (const Shape& s : kShapes) Check<TypeParam>(s, 0, false, false);
}

TYPED_TEST(RopeEmuTest, InverseMatchesReference) {
  for (const Shape& s : kShapes) Check<TypeParam>(s, 0, false, true);
}

TYPED_TEST(RopeEmuTest, StridedAndInPlace) {
  Check<TypeParam>({2, 3, 5, 16}, 8, false, false);  // padded rows that keep 16-byte vectors
  Check<TypeParam>({2, 3, 5, 16}, 3, false, true);   // padding that forces scalar accesses
  Check<TypeParam>({1, 4, 9, 128}, 0, true, false);
  Check<TypeParam>({2, 2, 3, 32}, 8, true, true);
}

TEST(RopeEmuTest, InverseUndoesForward) {
  const Shape s{2, 7, 3, 64};
  const std::vector<float> x = RandomValues<float>(size_t(2 * 7 * 3 * 64), 5);
  const std::vector<int64_t> pos = Positions(s);
  const std::vector<float> freq = InvFreq<float>(64, 500000.0);
  std::vector<float> y(x.size()), back(x.size());
  RopeArgs a{.dtype = DType::kF32,
             .batch = 2,
             .seqlen = 7,
             .heads = 3,
             .head_dim = 64,
             .x = x.data(),
             .x_strides = StridesOf(s, 0),
             .out = y.data(),
             .out_strides = StridesOf(s, 0),
             .positions = pos.data(),
             .inv_freq = freq.data()};
  ASSERT_TRUE(LaunchRope(a, nullptr).ok());
  a.x = y.data();
  a.out = back.data();
  a.inverse = true;
  ASSERT_TRUE(LaunchRope(a, nullptr).ok());
  ExpectAllClose(back, x, {1e-6, 1e-5}, "inverse(forward(x))");
}

TEST(RopeEmuTest, MatchesCpuBackend) {
  const int64_t b = 2, t = 5, h = 4, e = 32;
  const Tensor x = Tensor::FromDoubles(RandomValues<double>(size_t(b * t * h * e), 3, -3, 3),
                                       {b, t, h, e}, DType::kBF16);
  const Shape s{b, t, h, e};
  const std::vector<int64_t> pos = Positions(s);
  const std::vector<float> freq = InvFreq<float>(e);
  const Tensor positions = Tensor::FromVector(pos, {b, t});
  const Tensor inv_freq = Tensor::FromVector(freq, {e / 2});
  for (bool inverse : {false, true}) {
    const Tensor want = Tensor::Empty({b, t, h, e}, DType::kBF16);
    cpu::CpuBackend().Rope(x, positions, inv_freq, inverse, want);
    std::vector<BFloat16> got(size_t(b * t * h * e));
    ASSERT_TRUE(LaunchRope({.dtype = DType::kBF16,
                            .batch = b,
                            .seqlen = t,
                            .heads = h,
                            .head_dim = e,
                            .x = x.raw_data(),
                            .x_strides = StridesOf(s, 0),
                            .out = got.data(),
                            .out_strides = StridesOf(s, 0),
                            .positions = pos.data(),
                            .inv_freq = freq.data(),
                            .inverse = inverse},
                           nullptr)
                    .ok());
    const BFloat16* w = static_cast<const BFloat16*>(want.raw_data());
    // Same formula and rounding: identical up to cos/sin of the host library (here the same).
    ExpectBitIdentical(got, std::vector<BFloat16>(w, w + want.numel()), "vs CPU backend");
  }
}

TEST(RopeEmuTest, RejectsBadArguments) {
  float buf[64];
  int64_t pos[4] = {0, 1, 2, 3};
  const RopeArgs ok{.dtype = DType::kF32,
                    .batch = 1,
                    .seqlen = 2,
                    .heads = 2,
                    .head_dim = 8,
                    .x = buf,
                    .x_strides = {32, 16, 8},
                    .out = buf,
                    .out_strides = {32, 16, 8},
                    .positions = pos,
                    .inv_freq = buf};
  EXPECT_TRUE(LaunchRope(ok, nullptr).ok());
  RopeArgs a = ok;
  a.head_dim = 7;
  EXPECT_THAT(std::string(LaunchRope(a, nullptr).message()), HasSubstr("head_dim 7 must be even"));
  a = ok;
  a.positions = nullptr;
  EXPECT_THAT(std::string(LaunchRope(a, nullptr).message()), HasSubstr("null pointer"));
  EXPECT_THAT(std::string(LaunchRope(a, nullptr).message()), HasSubstr("positions"));
  a = ok;
  a.dtype = DType::kI64;
  EXPECT_THAT(std::string(LaunchRope(a, nullptr).message()), HasSubstr("Rope x has dtype i64"));
  a = ok;
  a.out_strides.head = 4;
  EXPECT_THAT(std::string(LaunchRope(a, nullptr).message()),
              HasSubstr("out head stride 4 is less than head_dim 8"));
  a = ok;
  a.batch = -1;
  EXPECT_TRUE(absl::IsInvalidArgument(LaunchRope(a, nullptr)));
  a = ok;
  a.seqlen = 0;
  a.x = nullptr;
  EXPECT_TRUE(LaunchRope(a, nullptr).ok());  // empty: nothing to do
}

}  // namespace
}  // namespace loom::cuda_emu
