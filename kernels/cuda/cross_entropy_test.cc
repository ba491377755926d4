// The cross-entropy kernels under the CUDA emulator against the double
// reference (cross_entropy_reference.h): warp rows, one-chunk and multi-chunk
// vocabularies (with a ragged last chunk), ignore_index, large logits, and
// labels out of range reported through first_bad_row.
#include "kernels/cuda/cross_entropy.h"

#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/cross_entropy_reference.h"
#include "kernels/cuda/testing/compare.h"
#include "kernels/cuda/testing/host_buffer.h"
#include "kernels/cuda/testing/schedules.h"
#include "runtime/backend.h"
#include "runtime/philox.h"

namespace loom::cuda_emu {
namespace {

using kernel_testing::HostBuffer;
using kernel_testing::kFloatDTypes;
using kernel_testing::Near;
using kernel_testing::RoundTo;
using kernel_testing::Schedule;
using kernel_testing::Schedules;
using kernel_testing::Tolerance;
using ::testing::HasSubstr;

constexpr int64_t kIgnore = -100;

struct Shape {
  int64_t rows, vocab;
};
// Warp rows (scalar and vector), one block chunk, three chunks, and a ragged
// second chunk of one logit.
const Shape kShapes[] = {{3, 1}, {5, 40}, {4, 64}, {2, 1500}, {3, 20000}, {2, 8193}};

std::vector<int64_t> MakeLabels(int64_t rows, int64_t vocab, uint64_t seed) {
  std::vector<int64_t> labels(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    labels[size_t(r)] = int64_t(philox::Generate(seed, uint64_t(r)).x[0] % uint64_t(vocab));
  }
  labels[0] = vocab - 1;
  if (rows > 2) labels[1] = kIgnore;
  return labels;
}

struct ForwardResult {
  HostBuffer losses, lse;
  int32_t first_bad_row;
};

ForwardResult RunForward(const HostBuffer& logits, int64_t rows, int64_t vocab,
                         std::vector<int64_t>& labels) {
  const DType stat = StatDTypeOf(logits.dtype());
  ForwardResult r{HostBuffer(stat, rows), HostBuffer(stat, rows), INT32_MAX};
  const CrossEntropyProblem p{.dtype = logits.dtype(),
                              .rows = rows,
                              .vocab = vocab,
                              .logits = logits.data(),
                              .labels = labels.data(),
                              .ignore_index = kIgnore,
                              .first_bad_row = &r.first_bad_row};
  HostBuffer workspace(DType::kF64, int64_t(CrossEntropyWorkspaceBytes(p) / 8) + 1);
  const absl::Status s =
      LaunchCrossEntropyForward(p, r.losses.data(), r.lse.data(), workspace.data(), nullptr);
  EXPECT_TRUE(s.ok()) << s;
  return r;
}

TEST(CrossEntropyTest, ForwardMatchesReference) {
  for (DType dtype : kFloatDTypes) {
    const DType stat = StatDTypeOf(dtype);
    for (const Shape& s : kShapes) {
      SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " [", s.rows, ", ", s.vocab, "]"));
      HostBuffer logits(dtype, s.rows * s.vocab);
      logits.FillRandom(1, -30.0, 30.0);
      std::vector<int64_t> labels = MakeLabels(s.rows, s.vocab, 2);
      const reference::CrossEntropyOutputs want =
          reference::CrossEntropyForward(s.rows, s.vocab, logits.ToDoubles(), labels, kIgnore);
      for (const Schedule& schedule : Schedules(2)) {
        SCOPED_TRACE(schedule.Name());
        emu::ScopedOptions options(schedule.options);
        const ForwardResult got = RunForward(logits, s.rows, s.vocab, labels);
        EXPECT_EQ(got.first_bad_row, INT32_MAX);
        for (int64_t r = 0; r < s.rows; ++r) {
          // Statistics are f32 (f64) whatever the logits' dtype: f32 (f64) accuracy.
          ASSERT_TRUE(Near(got.lse.Get(r), want.lse[size_t(r)], 4 * Tolerance(stat)))
              << "row " << r;
          ASSERT_TRUE(Near(got.losses.Get(r), want.losses[size_t(r)], 4 * Tolerance(stat)))
              << "row " << r;
        }
        if (s.rows > 2) {
          EXPECT_EQ(got.losses.Get(1), 0.0) << "ignored row";
        }
      }
    }
  }
}

TEST(CrossEntropyTest, BackwardMatchesReference) {
  for (DType dtype : kFloatDTypes) {
    const DType stat = StatDTypeOf(dtype);
    for (const Shape& s : kShapes) {
      SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " [", s.rows, ", ", s.vocab, "]"));
      HostBuffer logits(dtype, s.rows * s.vocab);
      logits.FillRandom(3, -8.0, 8.0);
      std::vector<int64_t> labels = MakeLabels(s.rows, s.vocab, 4);
      const std::vector<double> x = logits.ToDoubles();
      const reference::CrossEntropyOutputs fwd =
          reference::CrossEntropyForward(s.rows, s.vocab, x, labels, kIgnore);
      HostBuffer lse(stat, s.rows), grad(stat, s.rows);
      for (int64_t r = 0; r < s.rows; ++r) lse.Set(r, fwd.lse[size_t(r)]);
      grad.FillRandom(5, 0.5, 2.0);
      const std::vector<double> want = reference::CrossEntropyBackward(
          s.rows, s.vocab, x, labels, lse.ToDoubles(), grad.ToDoubles(), kIgnore);
      const CrossEntropyProblem p{.dtype = dtype,
                                  .rows = s.rows,
                                  .vocab = s.vocab,
                                  .logits = logits.data(),
                                  .labels = labels.data(),
                                  .ignore_index = kIgnore};
      for (const Schedule& schedule : Schedules(2)) {
        SCOPED_TRACE(schedule.Name());
        emu::ScopedOptions options(schedule.options);
        HostBuffer glogits(dtype, s.rows * s.vocab);
        ASSERT_TRUE(
            LaunchCrossEntropyBackward(p, lse.data(), grad.data(), glogits.data(), nullptr).ok());
        for (int64_t i = 0; i < glogits.count(); ++i) {
          ASSERT_TRUE(Near(glogits.Get(i), RoundTo(dtype, want[size_t(i)]), Tolerance(dtype)))
              << "element " << i;
        }
      }
    }
  }
}

TEST(CrossEntropyTest, BadLabelsAreReportedAndNeverReadOutOfRange) {
  for (const Shape& s : {Shape{6, 40}, Shape{6, 20000}}) {
    SCOPED_TRACE(absl::StrCat("[", s.rows, ", ", s.vocab, "]"));
    HostBuffer logits(DType::kF32, s.rows * s.vocab);
    logits.FillRandom(6, -1, 1);
    std::vector<int64_t> labels = MakeLabels(s.rows, s.vocab, 7);
    labels[4] = s.vocab;  // one past the end
    labels[3] = -5;       // negative and not ignore_index
    const ForwardResult got = RunForward(logits, s.rows, s.vocab, labels);
    EXPECT_EQ(got.first_bad_row, 3);
    EXPECT_TRUE(std::isnan(got.losses.Get(3)));
    EXPECT_TRUE(std::isnan(got.losses.Get(4)));
    EXPECT_FALSE(std::isnan(got.losses.Get(5)));

    int32_t bad = INT32_MAX;
    const CrossEntropyProblem p{.dtype = DType::kF32,
                                .rows = s.rows,
                                .vocab = s.vocab,
                                .logits = logits.data(),
                                .labels = labels.data(),
                                .ignore_index = kIgnore,
                                .first_bad_row = &bad};
    HostBuffer grad(DType::kF32, s.rows), glogits(DType::kF32, s.rows * s.vocab);
    grad.FillRandom(8, 1, 2);
    ASSERT_TRUE(
        LaunchCrossEntropyBackward(p, got.lse.data(), grad.data(), glogits.data(), nullptr).ok());
    EXPECT_EQ(bad, 3);
  }
}

TEST(CrossEntropyTest, EmptyAndBadArguments) {
  const CrossEntropyProblem empty{.dtype = DType::kF32, .rows = 0, .vocab = 10};
  EXPECT_TRUE(LaunchCrossEntropyForward(empty, nullptr, nullptr, nullptr, nullptr).ok());
  float buf[4];
  int64_t labels[2] = {0, 0};
  CrossEntropyProblem p{
      .dtype = DType::kI64, .rows = 2, .vocab = 2, .logits = buf, .labels = labels};
  absl::Status s = LaunchCrossEntropyForward(p, buf, buf, nullptr, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("logits must be floating"));
  p.dtype = DType::kF32;
  p.vocab = 0;
  s = LaunchCrossEntropyForward(p, buf, buf, nullptr, nullptr);
  EXPECT_THAT(std::string(s.message()), HasSubstr("have no classes"));
  p.vocab = 20000;
  s = LaunchCrossEntropyForward(p, buf, buf, nullptr, nullptr);
  EXPECT_THAT(std::string(s.message()), HasSubstr("workspace is null; it needs 48 bytes"));
  s = LaunchCrossEntropyBackward(p, buf, nullptr, buf, nullptr);
  EXPECT_THAT(std::string(s.message()), HasSubstr("grad_losses is null"));
}

}  // namespace
}  // namespace loom::cuda_emu
