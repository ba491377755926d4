// The reduce kernels under the CUDA emulator against the double reference
// (reduce_reference.h): every op, every strategy (warp rows, block rows with
// several chunks, columns), mixed kept/reduced dims, strided inputs, output
// dtypes other than the input's, NaN propagation, empty dims, and results
// that are bit-identical under every schedule.
#include "kernels/cuda/reduce.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/reduce_reference.h"
#include "kernels/cuda/testing/compare.h"
#include "kernels/cuda/testing/host_buffer.h"
#include "kernels/cuda/testing/schedules.h"
#include "kernels/cuda/testing/strided_layout.h"

namespace loom::cuda_emu {
namespace {

using kernel_testing::Contiguous;
using kernel_testing::HostBuffer;
using kernel_testing::Near;
using kernel_testing::Numel;
using kernel_testing::OffsetOf;
using kernel_testing::RoundTo;
using kernel_testing::Schedule;
using kernel_testing::Schedules;
using kernel_testing::Span;
using kernel_testing::Tol;
using kernel_testing::Tolerance;
using ::testing::HasSubstr;

struct Shape {
  std::string name;
  std::vector<int64_t> sizes;
  std::vector<bool> reduce;
  std::vector<int64_t> strides;  // empty: contiguous
};

const Shape kShapes[] = {
    {"warp_rows", {7, 300}, {false, true}, {}},
    {"block_rows", {3, 5000}, {false, true}, {}},
    {"block_rows_chunks", {2, 40000}, {false, true}, {}},  // 3 chunks per output
    {"columns", {300, 5}, {true, false}, {}},              // 19 chunks of 16 rows
    {"transposed_columns", {5, 300}, {false, true}, {1, 5}},
    {"middle_kept", {4, 6, 5}, {true, false, true}, {}},
    {"all_dims", {13, 17}, {true, true}, {}},
    {"size_one_dim", {4, 1}, {false, true}, {}},
    {"broadcast_input", {6, 50}, {true, false}, {0, 1}},  // a stride-0 dim
};

const ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kMean, ReduceOp::kMax, ReduceOp::kMin,
                         ReduceOp::kSumSquares};

std::vector<int64_t> StridesOf(const Shape& s) {
  return s.strides.empty() ? Contiguous(s.sizes) : s.strides;
}

std::vector<int64_t> KeptShape(const Shape& s) {
  std::vector<int64_t> out;
  for (size_t d = 0; d < s.sizes.size(); ++d) out.push_back(s.reduce[d] ? 1 : s.sizes[d]);
  return out;
}

// Runs the kernels; the output starts as NaN so unwritten outputs show.
absl::StatusOr<HostBuffer> RunReduce(ReduceOp op, const Shape& s, const HostBuffer& x,
                                     DType out_dtype) {
  HostBuffer out(out_dtype, std::max<int64_t>(Numel(KeptShape(s)), 1));
  const ReduceProblem p{.op = op,
                        .sizes = s.sizes,
                        .reduce_dim = s.reduce,
                        .x = x.data(),
                        .x_dtype = x.dtype(),
                        .x_strides = StridesOf(s),
                        .out = out.data(),
                        .out_dtype = out_dtype};
  absl::StatusOr<size_t> bytes = ReduceWorkspaceBytes(p);
  if (!bytes.ok()) return bytes.status();
  HostBuffer workspace(DType::kF64, int64_t(*bytes / 8));
  absl::Status status = LaunchReduce(p, workspace.data(), nullptr);
  if (!status.ok()) return status;
  return out;
}

std::vector<double> LogicalValues(const Shape& s, const HostBuffer& x) {
  std::vector<double> v(size_t(Numel(s.sizes)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = x.Get(OffsetOf(int64_t(i), s.sizes, StridesOf(s)));
  return v;
}

TEST(ReduceTest, EveryOpShapeAndDtypeMatchesReference) {
  const std::vector<std::pair<DType, DType>> dtypes = {
      {DType::kF32, DType::kF32},  {DType::kF64, DType::kF64}, {DType::kBF16, DType::kBF16},
      {DType::kF16, DType::kF16},  {DType::kI32, DType::kI32}, {DType::kI64, DType::kI64},
      {DType::kBF16, DType::kF64},  // the dtype of a norm
      {DType::kF32, DType::kF64},  {DType::kI64, DType::kF32}};
  for (const Shape& s : kShapes) {
    for (const auto& [in, out] : dtypes) {
      HostBuffer x(in, Span(s.sizes, StridesOf(s)));
      x.FillRandom(7, in == DType::kI32 || in == DType::kI64 ? -20.0 : -2.0, 2.0);
      const std::vector<double> values = LogicalValues(s, x);
      for (ReduceOp op : kOps) {
        SCOPED_TRACE(
            absl::StrCat(s.name, " op ", int(op), " ", DTypeName(in), " -> ", DTypeName(out)));
        const std::vector<double> want = reference::Reduce(op, s.sizes, s.reduce, values);
        absl::StatusOr<HostBuffer> got = RunReduce(op, s, x, out);
        ASSERT_TRUE(got.ok()) << got.status();
        // Floating sums may differ by the order of adds; integer outputs (a mean truncates)
        // have zero tolerance.
        const Tol tol = Tolerance(out);
        for (size_t o = 0; o < want.size(); ++o) {
          ASSERT_TRUE(Near(got->Get(int64_t(o)), RoundTo(out, want[o]), tol)) << "output " << o;
        }
      }
    }
  }
}

TEST(ReduceTest, ResultsAreBitIdenticalUnderEverySchedule) {
  for (const Shape& s : kShapes) {
    HostBuffer x(DType::kF32, Span(s.sizes, StridesOf(s)));
    x.FillRandom(8, -1.0, 1.0);
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kSumSquares}) {
      SCOPED_TRACE(absl::StrCat(s.name, " op ", int(op)));
      std::vector<HostBuffer> results;
      for (const Schedule& schedule : Schedules(3)) {
        SCOPED_TRACE(schedule.Name());
        emu::ScopedOptions options(schedule.options);
        absl::StatusOr<HostBuffer> got = RunReduce(op, s, x, DType::kF64);
        ASSERT_TRUE(got.ok()) << got.status();
        if (!results.empty()) {
          EXPECT_TRUE(got->BitEqual(results.front()));
        }
        results.push_back(*got);
      }
    }
  }
}

TEST(ReduceTest, NanPropagatesThroughEveryOp) {
  for (const Shape& s : {kShapes[0], kShapes[2], kShapes[3]}) {
    HostBuffer x(DType::kF32, Span(s.sizes, StridesOf(s)));
    x.FillRandom(9, -1.0, 1.0);
    x.Set(x.count() - 2, NAN);  // in the last output's rows (or column) of each shape
    const std::vector<double> values = LogicalValues(s, x);
    for (ReduceOp op : kOps) {
      SCOPED_TRACE(absl::StrCat(s.name, " op ", int(op)));
      const std::vector<double> want = reference::Reduce(op, s.sizes, s.reduce, values);
      absl::StatusOr<HostBuffer> got = RunReduce(op, s, x, DType::kF32);
      ASSERT_TRUE(got.ok()) << got.status();
      int nans = 0;
      for (size_t o = 0; o < want.size(); ++o) {
        nans += std::isnan(want[o]);
        ASSERT_TRUE(Near(got->Get(int64_t(o)), want[o], Tolerance(DType::kF32))) << o;
      }
      EXPECT_EQ(nans, 1);
    }
  }
}

TEST(ReduceTest, EmptyDimsAndScalars) {
  // Sum over an empty dim is 0; max/min/mean over one is an error.
  const Shape empty{"empty", {3, 0}, {false, true}, {}};
  HostBuffer x(DType::kF32, 1);
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kSumSquares}) {
    absl::StatusOr<HostBuffer> got = RunReduce(op, empty, x, DType::kF32);
    ASSERT_TRUE(got.ok()) << got.status();
    for (int o = 0; o < 3; ++o) EXPECT_EQ(got->Get(o), 0.0);
  }
  absl::StatusOr<HostBuffer> bad = RunReduce(ReduceOp::kMax, empty, x, DType::kF32);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("over an empty dim of [3, 0]"));
  // No outputs at all.
  const Shape no_outputs{"no_outputs", {0, 4}, {false, true}, {}};
  EXPECT_TRUE(RunReduce(ReduceOp::kMax, no_outputs, x, DType::kF32).ok());
  // A rank-0 tensor reduces over nothing: a copy.
  const Shape scalar{"scalar", {}, {}, {}};
  HostBuffer one(DType::kF32, 1);
  one.Set(0, 2.5);
  absl::StatusOr<HostBuffer> got = RunReduce(ReduceOp::kMean, scalar, one, DType::kF64);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->Get(0), 2.5);
}

TEST(ReduceTest, BadArgumentsAreInvalidArgument) {
  HostBuffer x(DType::kF32, 4), out(DType::kF32, 1);
  ReduceProblem p{.op = ReduceOp::kSum,
                  .sizes = {4},
                  .reduce_dim = {true, false},
                  .x = x.data(),
                  .x_dtype = DType::kF32,
                  .x_strides = {1},
                  .out = out.data(),
                  .out_dtype = DType::kF32};
  absl::Status s = LaunchReduce(p, nullptr, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("1 sizes, 1 strides and 2 reduce_dim flags"));
  p.reduce_dim = {true};
  p.out_dtype = DType::kBool;
  s = LaunchReduce(p, nullptr, nullptr);
  EXPECT_THAT(std::string(s.message()), HasSubstr("bool tensors have no arithmetic"));
  p.out_dtype = DType::kF32;
  s = LaunchReduce(p, nullptr, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("workspace is null; it needs 8 bytes"));
}

}  // namespace
}  // namespace loom::cuda_emu
