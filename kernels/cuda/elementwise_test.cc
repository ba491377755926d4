// The elementwise kernels under the CUDA emulator against the double
// reference (elementwise_reference.h): every dtype, every op, contiguous
// (vectorized), misaligned, transposed and broadcast layouts.
#include "kernels/cuda/elementwise.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/elementwise_reference.h"
#include "kernels/cuda/testing/compare.h"
#include "kernels/cuda/testing/host_buffer.h"
#include "kernels/cuda/testing/schedules.h"
#include "kernels/cuda/testing/strided_layout.h"

namespace loom::cuda_emu {
namespace {

using kernel_testing::Contiguous;
using kernel_testing::HostBuffer;
using kernel_testing::kFloatDTypes;
using kernel_testing::Near;
using kernel_testing::Numel;
using kernel_testing::RoundTo;
using kernel_testing::Same;
using kernel_testing::Schedule;
using kernel_testing::Schedules;
using kernel_testing::Span;
using kernel_testing::Tolerance;
using ::testing::HasSubstr;

// A view of a buffer: sizes shared by all operands, strides per operand.
struct Layout {
  std::string name;
  std::vector<int64_t> sizes;
  std::vector<int64_t> out_strides;
  std::vector<std::vector<int64_t>> in_strides;  // one per input
  int64_t offset = 0;                            // elements past 64-byte alignment
};

// Layouts for ops with `inputs` inputs: flat (vector path, with a tail that
// is not a multiple of the vector width), misaligned flat (strided path),
// a transposed input, and a single element.
std::vector<Layout> LayoutsFor(int inputs) {
  auto same = [&](std::vector<int64_t> s) { return std::vector<std::vector<int64_t>>(inputs, s); };
  std::vector<Layout> layouts = {
      {"flat", {1003}, {1}, same({1})},
      {"misaligned", {37}, {1}, same({1}), 1},
      {"transposed_in", {9, 7}, {7, 1}, same({1, 9})},
      {"one_element", {1, 1}, {1, 1}, same({1, 1})},
  };
  if (inputs == 2) {
    // a broadcast along dim 1, b along dim 0 (stride-0 views), out transposed.
    layouts.push_back({"broadcast", {5, 7}, {1, 5}, {{1, 0}, {0, 1}}});
  }
  return layouts;
}

HostBuffer MakeInput(DType dtype, const std::vector<int64_t>& sizes,
                     const std::vector<int64_t>& strides, int64_t offset, uint64_t seed, double low,
                     double high) {
  HostBuffer b(dtype, Span(sizes, strides), offset);
  b.FillRandom(seed, low, high);
  return b;
}

// ---- Copy.

TEST(ElementwiseTest, CopyCastsEveryDtypePairLikeTheCpu) {
  for (DType from : kAllDTypes) {
    for (DType to : kAllDTypes) {
      for (const Layout& l : LayoutsFor(1)) {
        SCOPED_TRACE(absl::StrCat(DTypeName(from), " -> ", DTypeName(to), " ", l.name));
        HostBuffer src = MakeInput(from, l.sizes, l.in_strides[0], l.offset, 3, -6.0, 6.0);
        for (int64_t i = 0; i < src.count(); i += 5) src.Set(i, 0.0);  // zeros for bool
        for (const Schedule& schedule : Schedules(2)) {
          SCOPED_TRACE(schedule.Name());
          emu::ScopedOptions options(schedule.options);
          HostBuffer out(to, Span(l.sizes, l.out_strides), l.offset);
          ASSERT_TRUE(LaunchCopy(l.sizes, {src.data(), from, l.in_strides[0]},
                                 {out.data(), to, l.out_strides}, nullptr)
                          .ok());
          reference::ForEachElement(
              l.sizes, {l.out_strides, l.in_strides[0]},
              [&](int64_t i, const std::vector<int64_t>& off) {
                ASSERT_TRUE(Same(out.Get(off[0]), reference::Cast(src.Get(off[1]), to)))
                    << "element " << i;
              });
        }
      }
    }
  }
}

TEST(ElementwiseTest, CopyOfNanAndLargeValuesRoundsLikeTheCpu) {
  const std::vector<double> values = {NAN, 1e30, -3.0e38, 65520.0, 1.00390625, 0.99609375};
  const std::vector<int64_t> sizes = {int64_t(values.size())}, strides = {1};
  HostBuffer src(DType::kF64, sizes[0]);
  for (size_t i = 0; i < values.size(); ++i) src.Set(int64_t(i), values[i]);
  for (DType to : kFloatDTypes) {
    HostBuffer out(to, sizes[0]);
    ASSERT_TRUE(
        LaunchCopy(sizes, {src.data(), DType::kF64, strides}, {out.data(), to, strides}, nullptr)
            .ok());
    for (int64_t i = 0; i < sizes[0]; ++i) {
      EXPECT_TRUE(Same(out.Get(i), RoundTo(to, src.Get(i)))) << DTypeName(to) << " " << i;
    }
  }
}

// ---- Fill.

TEST(ElementwiseTest, FillWritesOnlyTheView) {
  for (DType dtype : kAllDTypes) {
    SCOPED_TRACE(std::string(DTypeName(dtype)));
    // Flat (with a tail) and every other column of a [6, 14] buffer.
    for (const auto& [sizes, strides] :
         std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>>{{{1001}, {1}},
                                                                            {{6, 7}, {14, 2}}}) {
      for (const Schedule& schedule : Schedules(2)) {
        SCOPED_TRACE(schedule.Name());
        emu::ScopedOptions options(schedule.options);
        HostBuffer out(dtype, Span(sizes, strides));
        const HostBuffer untouched = out;
        ASSERT_TRUE(LaunchFill(sizes, {out.data(), dtype, strides}, 2.7, nullptr).ok());
        std::vector<bool> in_view(size_t(out.count()), false);
        reference::ForEachElement(sizes, {strides}, [&](int64_t, const std::vector<int64_t>& o) {
          in_view[size_t(o[0])] = true;
        });
        for (int64_t i = 0; i < out.count(); ++i) {
          if (in_view[size_t(i)]) {
            ASSERT_TRUE(Same(out.Get(i), RoundTo(dtype, 2.7))) << i;
          } else {
            ASSERT_TRUE(Same(out.Get(i), untouched.Get(i))) << i;
          }
        }
      }
    }
  }
}

// ---- Unary.

const UnaryOp kUnaryOps[] = {
    UnaryOp::kNeg,        UnaryOp::kExp,     UnaryOp::kLog,  UnaryOp::kSqrt, UnaryOp::kRsqrt,
    UnaryOp::kAbs,        UnaryOp::kSigmoid, UnaryOp::kSilu, UnaryOp::kTanh, UnaryOp::kSquare,
    UnaryOp::kReciprocal, UnaryOp::kRelu,    UnaryOp::kSin,  UnaryOp::kCos};

bool NeedsPositive(UnaryOp op) {
  return op == UnaryOp::kLog || op == UnaryOp::kSqrt || op == UnaryOp::kRsqrt;
}

TEST(ElementwiseTest, UnaryMatchesReferenceForEveryOpAndDtype) {
  for (UnaryOp op : kUnaryOps) {
    for (DType dtype : kAllDTypes) {
      const bool integer = dtype == DType::kI32 || dtype == DType::kI64;
      if (dtype == DType::kBool) continue;
      if (integer && op != UnaryOp::kNeg && op != UnaryOp::kAbs && op != UnaryOp::kSquare &&
          op != UnaryOp::kRelu) {
        continue;
      }
      for (const Layout& l : LayoutsFor(1)) {
        SCOPED_TRACE(absl::StrCat("op ", int(op), " ", DTypeName(dtype), " ", l.name));
        const double low = NeedsPositive(op) ? 0.05 : -4.0;
        HostBuffer x = MakeInput(dtype, l.sizes, l.in_strides[0], l.offset, 11, low, 4.0);
        for (const Schedule& schedule : Schedules(2)) {
          SCOPED_TRACE(schedule.Name());
          emu::ScopedOptions options(schedule.options);
          HostBuffer out(dtype, Span(l.sizes, l.out_strides), l.offset);
          ASSERT_TRUE(LaunchUnary(op, l.sizes, {x.data(), dtype, l.in_strides[0]},
                                  {out.data(), dtype, l.out_strides}, nullptr)
                          .ok());
          reference::ForEachElement(l.sizes, {l.out_strides, l.in_strides[0]},
                                    [&](int64_t i, const std::vector<int64_t>& off) {
                                      const double want =
                                          RoundTo(dtype, reference::Unary(op, x.Get(off[1])));
                                      ASSERT_TRUE(Near(out.Get(off[0]), want, Tolerance(dtype)))
                                          << "element " << i << " x " << x.Get(off[1]);
                                    });
        }
      }
    }
  }
}

// ---- Binary.

const BinaryOp kBinaryOps[] = {
    BinaryOp::kAdd,     BinaryOp::kSub,     BinaryOp::kMul, BinaryOp::kDiv,
    BinaryOp::kMaximum, BinaryOp::kMinimum, BinaryOp::kPow, BinaryOp::kSiluBackward,
    BinaryOp::kEq,      BinaryOp::kLt,      BinaryOp::kGt};

TEST(ElementwiseTest, BinaryMatchesReferenceForEveryOpAndDtype) {
  for (BinaryOp op : kBinaryOps) {
    for (DType dtype : kAllDTypes) {
      const bool integer = dtype == DType::kI32 || dtype == DType::kI64;
      if (dtype == DType::kBool || (integer && op == BinaryOp::kSiluBackward)) continue;
      for (const Layout& l : LayoutsFor(2)) {
        SCOPED_TRACE(absl::StrCat("op ", int(op), " ", DTypeName(dtype), " ", l.name));
        double a_low = -4, a_high = 4, b_low = -4, b_high = 4;
        if (op == BinaryOp::kPow) {
          a_low = integer ? -3 : 0.25, a_high = 3, b_low = integer ? 0 : -2, b_high = 3;
        }
        if (op == BinaryOp::kDiv && integer) b_low = 1;
        HostBuffer a = MakeInput(dtype, l.sizes, l.in_strides[0], l.offset, 21, a_low, a_high);
        HostBuffer b = MakeInput(dtype, l.sizes, l.in_strides[1], l.offset, 22, b_low, b_high);
        // Some equal pairs for the comparisons and ties of maximum/minimum (not for integer
        // division: a may be 0).
        if (!(integer && op == BinaryOp::kDiv)) {
          for (int64_t i = 0; i < std::min(a.count(), b.count()); i += 3) b.Set(i, a.Get(i));
        }
        for (const Schedule& schedule : Schedules(2)) {
          SCOPED_TRACE(schedule.Name());
          emu::ScopedOptions options(schedule.options);
          HostBuffer out(dtype, Span(l.sizes, l.out_strides), l.offset);
          ASSERT_TRUE(LaunchBinary(op, l.sizes, {a.data(), dtype, l.in_strides[0]},
                                   {b.data(), dtype, l.in_strides[1]},
                                   {out.data(), dtype, l.out_strides}, nullptr)
                          .ok());
          reference::ForEachElement(l.sizes, {l.out_strides, l.in_strides[0], l.in_strides[1]},
                                    [&](int64_t i, const std::vector<int64_t>& off) {
                                      const double av = a.Get(off[1]), bv = b.Get(off[2]);
                                      const double want =
                                          RoundTo(dtype, reference::Binary(op, av, bv, integer));
                                      ASSERT_TRUE(Near(out.Get(off[0]), want, Tolerance(dtype)))
                                          << "element " << i << " a " << av << " b " << bv;
                                    });
        }
      }
    }
  }
}

// maximum/minimum pick like the CPU's `a > b ? a : b`: NaN in b wins, in a loses.
TEST(ElementwiseTest, MaximumAndMinimumTreatNanLikeTheCpu) {
  const std::vector<int64_t> sizes = {2}, strides = {1};
  HostBuffer a(DType::kF32, 2), b(DType::kF32, 2), out(DType::kF32, 2);
  a.Set(0, NAN), b.Set(0, 1.0), a.Set(1, 1.0), b.Set(1, NAN);
  for (BinaryOp op : {BinaryOp::kMaximum, BinaryOp::kMinimum}) {
    ASSERT_TRUE(LaunchBinary(op, sizes, {a.data(), DType::kF32, strides},
                             {b.data(), DType::kF32, strides}, {out.data(), DType::kF32, strides},
                             nullptr)
                    .ok());
    EXPECT_TRUE(Same(out.Get(0), 1.0));
    EXPECT_TRUE(std::isnan(out.Get(1)));
  }
}

// ---- Affine and PowScalar.

TEST(ElementwiseTest, AffineMatchesReferenceAndWorksInPlace) {
  for (DType dtype : kAllDTypes) {
    if (dtype == DType::kBool) continue;
    const bool integer = dtype == DType::kI32 || dtype == DType::kI64;
    // The CPU converts alpha and beta to the compute type first (2.75 -> 2 for integers).
    const double alpha = 2.75, beta = -1.5;
    const double ca = integer ? 2 : alpha, cb = integer ? -1 : beta;
    for (const Layout& l : LayoutsFor(1)) {
      SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " ", l.name));
      HostBuffer x = MakeInput(dtype, l.sizes, l.in_strides[0], l.offset, 31, -5.0, 5.0);
      for (const Schedule& schedule : Schedules(2)) {
        SCOPED_TRACE(schedule.Name());
        emu::ScopedOptions options(schedule.options);
        HostBuffer out(dtype, Span(l.sizes, l.out_strides), l.offset);
        ASSERT_TRUE(LaunchAffine(l.sizes, {x.data(), dtype, l.in_strides[0]}, alpha, beta,
                                 {out.data(), dtype, l.out_strides}, nullptr)
                        .ok());
        reference::ForEachElement(l.sizes, {l.out_strides, l.in_strides[0]},
                                  [&](int64_t i, const std::vector<int64_t>& off) {
                                    const double want = RoundTo(dtype, ca * x.Get(off[1]) + cb);
                                    ASSERT_TRUE(Near(out.Get(off[0]), want, Tolerance(dtype)))
                                        << "element " << i;
                                  });
      }
    }
  }
  // In place: x is both input and output (AffineInPlace).
  const std::vector<int64_t> sizes = {100}, strides = {1};
  HostBuffer x(DType::kBF16, 100);
  x.FillRandom(5, -1, 1);
  const HostBuffer before = x;
  ASSERT_TRUE(LaunchAffine(sizes, {x.data(), DType::kBF16, strides}, 0.5, 1.0,
                           {x.data(), DType::kBF16, strides}, nullptr)
                  .ok());
  for (int64_t i = 0; i < 100; ++i) {
    EXPECT_TRUE(Same(x.Get(i), RoundTo(DType::kBF16, 0.5 * before.Get(i) + 1.0))) << i;
  }
}

TEST(ElementwiseTest, PowScalarMatchesReference) {
  for (DType dtype : kFloatDTypes) {
    for (double exponent : {2.5, -1.0, 0.0}) {
      for (const Layout& l : LayoutsFor(1)) {
        SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " ^", exponent, " ", l.name));
        HostBuffer x = MakeInput(dtype, l.sizes, l.in_strides[0], l.offset, 41, 0.1, 3.0);
        HostBuffer out(dtype, Span(l.sizes, l.out_strides), l.offset);
        ASSERT_TRUE(LaunchPowScalar(l.sizes, {x.data(), dtype, l.in_strides[0]}, exponent,
                                    {out.data(), dtype, l.out_strides}, nullptr)
                        .ok());
        reference::ForEachElement(
            l.sizes, {l.out_strides, l.in_strides[0]},
            [&](int64_t i, const std::vector<int64_t>& off) {
              const double want = RoundTo(dtype, std::pow(x.Get(off[1]), exponent));
              ASSERT_TRUE(Near(out.Get(off[0]), want, Tolerance(dtype))) << "element " << i;
            });
      }
    }
  }
}

// ---- Many dims, empty tensors, argument errors.

TEST(ElementwiseTest, SevenDimPermutedCopy) {
  // A 7-d view whose dims do not merge: dims {0, 2, 1, 3, 5, 4, 6} of a contiguous
  // [2, 2, 3, 2, 2, 3, 2] tensor.
  const std::vector<int64_t> sizes = {2, 3, 2, 2, 3, 2, 2};
  const std::vector<int64_t> base = Contiguous({2, 2, 3, 2, 2, 3, 2});
  const std::vector<int64_t> src_strides = {base[0], base[2], base[1], base[3],
                                            base[5], base[4], base[6]};
  HostBuffer src(DType::kF32, Numel(sizes));
  src.FillRandom(9, -1, 1);
  HostBuffer out(DType::kF32, Numel(sizes));
  for (const Schedule& schedule : Schedules(2)) {
    SCOPED_TRACE(schedule.Name());
    emu::ScopedOptions options(schedule.options);
    ASSERT_TRUE(LaunchCopy(sizes, {src.data(), DType::kF32, src_strides},
                           {out.data(), DType::kF32, Contiguous(sizes)}, nullptr)
                    .ok());
    reference::ForEachElement(sizes, {Contiguous(sizes), src_strides},
                              [&](int64_t i, const std::vector<int64_t>& off) {
                                ASSERT_TRUE(Same(out.Get(off[0]), src.Get(off[1]))) << i;
                              });
  }
}

TEST(ElementwiseTest, EmptyTensorsAreNoOps) {
  const std::vector<int64_t> sizes = {0, 5}, strides = {5, 1};
  EXPECT_TRUE(
      LaunchCopy(sizes, {nullptr, DType::kF32, strides}, {nullptr, DType::kBF16, strides}, nullptr)
          .ok());
  EXPECT_TRUE(LaunchFill(sizes, {nullptr, DType::kF32, strides}, 1.0, nullptr).ok());
  EXPECT_TRUE(LaunchBinary(BinaryOp::kAdd, sizes, {nullptr, DType::kF32, strides},
                           {nullptr, DType::kF32, strides}, {nullptr, DType::kF32, strides},
                           nullptr)
                  .ok());
}

TEST(ElementwiseTest, BadArgumentsAreInvalidArgumentNamingTheProblem) {
  float buf[16] = {};
  const std::vector<int64_t> sizes = {4}, strides = {1}, bad_rank = {1, 1};
  auto expect = [](const absl::Status& s, const std::string& text) {
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(text));
  };
  expect(LaunchCopy(sizes, {buf, DType::kF32, bad_rank}, {buf, DType::kF32, strides}, nullptr),
         "Copy: src has 2 strides for 1 dims");
  expect(LaunchCopy(sizes, {nullptr, DType::kF32, strides}, {buf, DType::kF32, strides}, nullptr),
         "Copy: src is null for 4 elements");
  expect(LaunchUnary(UnaryOp::kExp, sizes, {buf, DType::kI32, strides}, {buf, DType::kI32, strides},
                     nullptr),
         "needs a floating dtype, got i32");
  expect(LaunchUnary(UnaryOp::kNeg, sizes, {buf, DType::kF32, strides},
                     {buf, DType::kBF16, strides}, nullptr),
         "Unary: out is bf16, expected f32");
  expect(LaunchBinary(BinaryOp::kAdd, sizes, {buf, DType::kBool, strides},
                      {buf, DType::kBool, strides}, {buf, DType::kBool, strides}, nullptr),
         "bool tensors have no arithmetic");
  expect(LaunchBinary(BinaryOp::kSiluBackward, sizes, {buf, DType::kI64, strides},
                      {buf, DType::kI64, strides}, {buf, DType::kI64, strides}, nullptr),
         "kSiluBackward needs a floating dtype");
  expect(LaunchPowScalar(sizes, {buf, DType::kI32, strides}, 2.0, {buf, DType::kI32, strides},
                         nullptr),
         "PowScalar: expected a floating dtype");
  expect(LaunchFill({4}, {buf, DType::kF32, {-1}}, 0.0, nullptr), "negative stride");
  // Nine dims that cannot merge (alternating strides).
  const std::vector<int64_t> nine = {2, 2, 2, 2, 2, 2, 2, 2, 2};
  const std::vector<int64_t> scattered = {1, 512, 2, 256, 4, 128, 8, 64, 16};
  expect(LaunchFill(nine, {buf, DType::kF32, scattered}, 0.0, nullptr),
         "need more than 8 dims after merging");
}

}  // namespace
}  // namespace loom::cuda_emu
