// Implementation selection: parsing of LOOM_GEMM / LOOM_ATTENTION and the
// dispatch to each implementation (which, without a GPU, must fail cleanly).
#include "kernels/cuda/kernel_select.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace loom::cuda {
namespace {

using ::testing::HasSubstr;

TEST(KernelSelectTest, ParsesTheVariables) {
  EXPECT_EQ(*ParseGemmImpl(""), GemmImpl::kLoom);
  EXPECT_EQ(*ParseGemmImpl("loom"), GemmImpl::kLoom);
  EXPECT_EQ(*ParseGemmImpl(" CuBLASLt "), GemmImpl::kCublasLt);
  EXPECT_EQ(*ParseAttentionImpl("cudnn"), AttentionImpl::kCudnn);
  EXPECT_EQ(*ParseAttentionImpl(""), AttentionImpl::kLoom);
  const absl::StatusOr<GemmImpl> bad = ParseGemmImpl("cublas");
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("LOOM_GEMM=cublas: expected loom (our kernels, the default) or cublaslt"));
  EXPECT_THAT(std::string(ParseAttentionImpl("flash").status().message()),
              HasSubstr("LOOM_ATTENTION=flash: expected loom"));
  EXPECT_STREQ(GemmImplName(GemmImpl::kCublasLt), "cublaslt");
  EXPECT_STREQ(AttentionImplName(AttentionImpl::kCudnn), "cudnn");
}

TEST(KernelSelectTest, ReadsTheEnvironment) {
  setenv("LOOM_GEMM", "cublaslt", 1);
  EXPECT_EQ(*GemmImplFromEnv(), GemmImpl::kCublasLt);
  unsetenv("LOOM_GEMM");
  EXPECT_EQ(*GemmImplFromEnv(), GemmImpl::kLoom);
  setenv("LOOM_ATTENTION", "nope", 1);
  EXPECT_FALSE(AttentionImplFromEnv().ok());
  unsetenv("LOOM_ATTENTION");
}

bool HaveGpu() {
  int count = 0;
  const bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  cudaGetLastError();
  return ok;
}

TEST(KernelSelectTest, DispatchesToEachImplementation) {
  std::vector<float> a(16), b(16), out(16);
  const GemmProblem p{.input = DType::kF32,
                      .output = DType::kF32,
                      .m = 4,
                      .n = 4,
                      .k = 4,
                      .a = a.data(),
                      .lda = 4,
                      .b = b.data(),
                      .ldb = 4,
                      .out = out.data(),
                      .ldo = 4};
  // Each implementation validates with its own name in the message.
  GemmProblem bad = p;
  bad.lda = 1;
  EXPECT_THAT(std::string(LaunchGemmWith(GemmImpl::kLoom, bad, nullptr).message()),
              HasSubstr("LaunchGemm: "));
  EXPECT_THAT(std::string(LaunchGemmWith(GemmImpl::kCublasLt, bad, nullptr).message()),
              HasSubstr("LaunchGemmCublasLt: "));
  AttentionProblem f32{.dtype = DType::kF32,
                       .batch = 1,
                       .seqlen_q = 4,
                       .seqlen_k = 4,
                       .heads = 1,
                       .kv_heads = 1,
                       .head_dim = 8};
  EXPECT_TRUE(
      absl::IsUnimplemented(LaunchAttentionForwardWith(AttentionImpl::kCudnn, f32, nullptr)));
  EXPECT_EQ(AttentionBackwardWorkspaceBytesWith(AttentionImpl::kCudnn, f32), 0u);
  if (!HaveGpu()) {
    EXPECT_FALSE(LaunchGemmWith(GemmImpl::kLoom, p, nullptr).ok());
    EXPECT_TRUE(absl::IsFailedPrecondition(LaunchGemmWith(GemmImpl::kCublasLt, p, nullptr)));
    EXPECT_FALSE(LaunchSelectedGemm(p, nullptr).ok());
  }
}

}  // namespace
}  // namespace loom::cuda
