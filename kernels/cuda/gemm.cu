// LaunchGemm: argument validation and the choice of kernel (see gemm.h).
#include "absl/strings/str_cat.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemm_internal.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace gemm_internal {

Tile ChooseTile(const GemmProblem& p) {
  const int64_t large_blocks = ((p.m + 127) / 128) * ((p.n + 127) / 128) * p.batch;
  // About one wave of 128x128 blocks on an A100 (108 SMs) or H100 (132).
  return large_blocks >= 100 ? Tile::k128x128 : Tile::k64x64;
}

}  // namespace gemm_internal

namespace {

absl::Status Invalid(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("LaunchGemm: ", what));
}

// Checks one operand: a stored [rows, cols] matrix with row stride ld.
absl::Status CheckOperand(const char* name, const void* ptr, int64_t rows, int64_t cols, int64_t ld,
                          int64_t batch_stride) {
  if (rows == 0 || cols == 0) return absl::OkStatus();
  if (ptr == nullptr) return Invalid(absl::StrCat(name, " is null"));
  if (ld < cols) {
    return Invalid(absl::StrCat("ld", name, " = ", ld, " is less than the ", cols,
                                " columns of the stored ", rows, " x ", cols, " matrix"));
  }
  if (batch_stride < 0) return Invalid(absl::StrCat("batch_stride_", name, " < 0"));
  return absl::OkStatus();
}

}  // namespace

absl::Status LaunchGemm(const GemmProblem& p, cudaStream_t stream) {
  const bool half = p.input == DType::kBF16 || p.input == DType::kF16;
  if (!half && p.input != DType::kF32 && p.input != DType::kF64) {
    return Invalid(
        absl::StrCat("input dtype ", DTypeName(p.input), " is not one of bf16, f16, f32, f64"));
  }
  if (p.output != p.input && !(half && p.output == DType::kF32)) {
    return Invalid(absl::StrCat("output dtype ", DTypeName(p.output), " for ", DTypeName(p.input),
                                " inputs (expected ", DTypeName(p.input), half ? " or f32" : "",
                                ")"));
  }
  if (p.batch < 1 || p.m < 0 || p.n < 0 || p.k < 0) {
    return Invalid(absl::StrCat("batch ", p.batch, ", m ", p.m, ", n ", p.n, ", k ", p.k,
                                " (need batch >= 1 and m, n, k >= 0)"));
  }
  if (p.m == 0 || p.n == 0) return absl::OkStatus();
  LOOM_RETURN_IF_ERROR(CheckOperand("a", p.a, p.trans_a ? p.k : p.m, p.trans_a ? p.m : p.k, p.lda,
                                    p.batch_stride_a));
  LOOM_RETURN_IF_ERROR(CheckOperand("b", p.b, p.trans_b ? p.n : p.k, p.trans_b ? p.k : p.n, p.ldb,
                                    p.batch_stride_b));
  LOOM_RETURN_IF_ERROR(CheckOperand("o", p.out, p.m, p.n, p.ldo, p.batch_stride_out));
  if (p.batch > 1 && p.batch_stride_out < (p.m - 1) * p.ldo + p.n) {
    return Invalid(
        absl::StrCat("batch_stride_o = ", p.batch_stride_out,
                     " makes the output batches overlap (need >= ", (p.m - 1) * p.ldo + p.n, ")"));
  }
  if (p.input == DType::kBF16) {
    return gemm_internal::LaunchTensorCoreGemmBf16(p, gemm_internal::ChooseTile(p), stream);
  }
  if (p.input == DType::kF16) {
    return gemm_internal::LaunchTensorCoreGemmF16(p, gemm_internal::ChooseTile(p), stream);
  }
  return gemm_internal::LaunchSimtGemm(p, stream);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
