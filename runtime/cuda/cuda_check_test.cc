// Tests of the CUDA error to absl::Status conversion. cudaGetErrorName/String work without a
// device, so this runs anywhere.
#include "runtime/cuda/cuda_check.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::cuda {
namespace {

using ::testing::HasSubstr;

TEST(CudaCheckTest, SuccessIsOk) {
  EXPECT_TRUE(CudaErrorToStatus(cudaSuccess, "f()", "x.cc", 1).ok());
  EXPECT_TRUE(LOOM_CUDA_STATUS(cudaSuccess).ok());
}

TEST(CudaCheckTest, MessageHasLocationCallAndCudaDescription) {
  const absl::Status s =
      CudaErrorToStatus(cudaErrorMemoryAllocation, "cudaMalloc(&p, n)", "runtime/x.cc", 42);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_EQ(s.message(), absl::StrCat("runtime/x.cc:42: cudaMalloc(&p, n) failed: "
                                      "cudaErrorMemoryAllocation (",
                                      cudaGetErrorString(cudaErrorMemoryAllocation), ")"));
}

TEST(CudaCheckTest, CodesSayWhatTheCallerCanDo) {
  EXPECT_EQ(CudaErrorCode(cudaErrorNoDevice), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CudaErrorCode(cudaErrorInsufficientDriver), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CudaErrorCode(cudaErrorInvalidValue), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CudaErrorCode(cudaErrorInvalidDevice), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CudaErrorCode(cudaErrorIllegalAddress), absl::StatusCode::kInternal);
  EXPECT_EQ(CudaErrorCode(cudaErrorLaunchFailure), absl::StatusCode::kInternal);
}

absl::Status ReturnsThrough(cudaError_t err, bool* reached_end) {
  LOOM_CUDA_RETURN_IF_ERROR(err);
  *reached_end = true;
  return absl::OkStatus();
}

TEST(CudaCheckTest, ReturnIfErrorReturnsEarlyWithTheCallText) {
  bool reached_end = false;
  const absl::Status s = ReturnsThrough(cudaErrorInvalidValue, &reached_end);
  EXPECT_FALSE(reached_end);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("cuda_check_test.cc:"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(": err failed: cudaErrorInvalidValue ("));

  EXPECT_TRUE(ReturnsThrough(cudaSuccess, &reached_end).ok());
  EXPECT_TRUE(reached_end);
}

TEST(CudaCheckTest, CheckAbortsWithTheMessage) {
  EXPECT_DEATH(LOOM_CUDA_CHECK(cudaErrorNotPermitted),
               "LOOM_CUDA_CHECK|cudaErrorNotPermitted failed: cudaErrorNotPermitted");
  LOOM_CUDA_CHECK(cudaSuccess);  // no abort
}

}  // namespace
}  // namespace loom::cuda
