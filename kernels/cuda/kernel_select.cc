// Implementation choice for GEMM and attention (see kernel_select.h).
#include "kernels/cuda/kernel_select.h"

#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "kernels/cuda/attention_cudnn.h"
#include "kernels/cuda/gemm_cublaslt.h"
#include "runtime/status.h"

namespace loom::cuda {
namespace {

std::string Lower(absl::string_view v) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(v));
}

absl::string_view Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? absl::string_view() : absl::string_view(v);
}

// A process-wide choice, or the error that explains a bad variable.
template <typename Impl>
const absl::StatusOr<Impl>& Selected(absl::StatusOr<Impl> (*from_env)()) {
  static const absl::StatusOr<Impl> choice = from_env();
  return choice;
}

}  // namespace

absl::StatusOr<GemmImpl> ParseGemmImpl(absl::string_view value) {
  const std::string v = Lower(value);
  if (v.empty() || v == "loom") return GemmImpl::kLoom;
  if (v == "cublaslt") return GemmImpl::kCublasLt;
  return absl::InvalidArgumentError(
      absl::StrCat("LOOM_GEMM=", value, ": expected loom (our kernels, the default) or cublaslt"));
}

absl::StatusOr<AttentionImpl> ParseAttentionImpl(absl::string_view value) {
  const std::string v = Lower(value);
  if (v.empty() || v == "loom") return AttentionImpl::kLoom;
  if (v == "cudnn") return AttentionImpl::kCudnn;
  return absl::InvalidArgumentError(absl::StrCat(
      "LOOM_ATTENTION=", value, ": expected loom (our kernels, the default) or cudnn"));
}

const char* GemmImplName(GemmImpl impl) { return impl == GemmImpl::kLoom ? "loom" : "cublaslt"; }
const char* AttentionImplName(AttentionImpl impl) {
  return impl == AttentionImpl::kLoom ? "loom" : "cudnn";
}

absl::StatusOr<GemmImpl> GemmImplFromEnv() { return ParseGemmImpl(Env("LOOM_GEMM")); }
absl::StatusOr<AttentionImpl> AttentionImplFromEnv() {
  return ParseAttentionImpl(Env("LOOM_ATTENTION"));
}

absl::Status LaunchGemmWith(GemmImpl impl, const GemmProblem& p, cudaStream_t stream) {
  return impl == GemmImpl::kCublasLt ? LaunchGemmCublasLt(p, stream) : LaunchGemm(p, stream);
}

absl::Status LaunchAttentionForwardWith(AttentionImpl impl, const AttentionProblem& p,
                                        cudaStream_t stream) {
  return impl == AttentionImpl::kCudnn ? LaunchAttentionForwardCudnn(p, stream)
                                       : LaunchAttentionForward(p, stream);
}

size_t AttentionBackwardWorkspaceBytesWith(AttentionImpl impl, const AttentionProblem& p) {
  return impl == AttentionImpl::kCudnn ? 0 : AttentionBackwardWorkspaceBytes(p);
}

absl::Status LaunchAttentionBackwardWith(AttentionImpl impl, const AttentionBackwardProblem& p,
                                         cudaStream_t stream) {
  return impl == AttentionImpl::kCudnn ? LaunchAttentionBackwardCudnn(p, stream)
                                       : LaunchAttentionBackward(p, stream);
}

absl::Status LaunchSelectedGemm(const GemmProblem& p, cudaStream_t stream) {
  LOOM_ASSIGN_OR_RETURN(const GemmImpl impl, Selected(&GemmImplFromEnv));
  return LaunchGemmWith(impl, p, stream);
}

absl::Status LaunchSelectedAttentionForward(const AttentionProblem& p, cudaStream_t stream) {
  LOOM_ASSIGN_OR_RETURN(const AttentionImpl impl, Selected(&AttentionImplFromEnv));
  return LaunchAttentionForwardWith(impl, p, stream);
}

size_t SelectedAttentionBackwardWorkspaceBytes(const AttentionProblem& p) {
  const absl::StatusOr<AttentionImpl>& impl = Selected(&AttentionImplFromEnv);
  return AttentionBackwardWorkspaceBytesWith(impl.ok() ? *impl : AttentionImpl::kLoom, p);
}

absl::Status LaunchSelectedAttentionBackward(const AttentionBackwardProblem& p,
                                             cudaStream_t stream) {
  LOOM_ASSIGN_OR_RETURN(const AttentionImpl impl, Selected(&AttentionImplFromEnv));
  return LaunchAttentionBackwardWith(impl, p, stream);
}

}  // namespace loom::cuda
