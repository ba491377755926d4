// The softmax kernels under the CUDA emulator against the double reference
// (softmax_reference.h): warp rows and block rows, vectorized and scalar
// loads, misaligned rows, masked (-inf) entries, forward and backward.
#include "kernels/cuda/softmax.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/softmax_reference.h"
#include "kernels/cuda/testing/compare.h"
#include "kernels/cuda/testing/host_buffer.h"
#include "kernels/cuda/testing/schedules.h"

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

struct Shape {
  int64_t rows, cols;
  int64_t offset;  // elements past 64-byte alignment (misaligned rows use scalar loads)
};

// Warp rows (cols <= 1024) and block rows, with and without 16-byte vectors.
const Shape kShapes[] = {{1, 1, 0},    {5, 7, 0},    {10, 64, 0},  {9, 64, 1},
                         {3, 1024, 0}, {2, 1500, 0}, {2, 3000, 0}, {17, 33, 0}};

TEST(SoftmaxTest, ForwardMatchesReference) {
  for (DType dtype : kFloatDTypes) {
    for (const Shape& s : kShapes) {
      for (bool log : {false, true}) {
        SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " [", s.rows, ", ", s.cols, "] offset ",
                                  s.offset, log ? " log" : ""));
        HostBuffer x(dtype, s.rows * s.cols, s.offset);
        x.FillRandom(1, -6.0, 6.0);
        // Masked entries, as attention masks write them (never a whole row).
        for (int64_t i = 3; i < x.count(); i += 11) {
          if (s.cols > 1) x.Set(i, -INFINITY);
        }
        const std::vector<double> want = reference::Softmax(s.rows, s.cols, x.ToDoubles(), log);
        for (const Schedule& schedule : Schedules(2)) {
          SCOPED_TRACE(schedule.Name());
          emu::ScopedOptions options(schedule.options);
          HostBuffer out(dtype, s.rows * s.cols, s.offset);
          ASSERT_TRUE(
              LaunchSoftmax(dtype, s.rows, s.cols, x.data(), log, out.data(), nullptr).ok());
          for (int64_t i = 0; i < out.count(); ++i) {
            ASSERT_TRUE(Near(out.Get(i), RoundTo(dtype, want[size_t(i)]), Tolerance(dtype)))
                << "element " << i;
          }
        }
      }
    }
  }
}

TEST(SoftmaxTest, BackwardMatchesReference) {
  for (DType dtype : kFloatDTypes) {
    for (const Shape& s : kShapes) {
      for (bool log : {false, true}) {
        SCOPED_TRACE(absl::StrCat(DTypeName(dtype), " [", s.rows, ", ", s.cols, "] offset ",
                                  s.offset, log ? " log" : ""));
        HostBuffer x(dtype, s.rows * s.cols), y(dtype, s.rows * s.cols, s.offset),
            gy(dtype, s.rows * s.cols, s.offset);
        x.FillRandom(2, -3.0, 3.0);
        gy.FillRandom(3, -1.0, 1.0);
        const std::vector<double> y_exact = reference::Softmax(s.rows, s.cols, x.ToDoubles(), log);
        for (int64_t i = 0; i < y.count(); ++i) y.Set(i, y_exact[size_t(i)]);
        const std::vector<double> want =
            reference::SoftmaxBackward(s.rows, s.cols, y.ToDoubles(), gy.ToDoubles(), log);
        // The gradient's scale is that of gy: compare against the row's magnitude.
        for (const Schedule& schedule : Schedules(2)) {
          SCOPED_TRACE(schedule.Name());
          emu::ScopedOptions options(schedule.options);
          HostBuffer gx(dtype, s.rows * s.cols, s.offset);
          ASSERT_TRUE(LaunchSoftmaxBackward(dtype, s.rows, s.cols, y.data(), gy.data(), log,
                                            gx.data(), nullptr)
                          .ok());
          for (int64_t i = 0; i < gx.count(); ++i) {
            ASSERT_TRUE(Near(gx.Get(i), RoundTo(dtype, want[size_t(i)]), 2 * Tolerance(dtype)))
                << "element " << i;
          }
        }
      }
    }
  }
}

TEST(SoftmaxTest, EmptyAndBadArguments) {
  EXPECT_TRUE(LaunchSoftmax(DType::kF32, 0, 5, nullptr, false, nullptr, nullptr).ok());
  EXPECT_TRUE(LaunchSoftmax(DType::kF32, 3, 0, nullptr, true, nullptr, nullptr).ok());
  float buf[4];
  absl::Status s = LaunchSoftmax(DType::kI32, 1, 4, buf, false, buf, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("Softmax: expected a floating dtype"));
  s = LaunchSoftmaxBackward(DType::kF32, 1, 4, buf, nullptr, false, buf, nullptr);
  EXPECT_THAT(std::string(s.message()), HasSubstr("SoftmaxBackward: gy is null"));
}

}  // namespace
}  // namespace loom::cuda_emu
