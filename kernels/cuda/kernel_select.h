// Which implementation CUDA GEMMs and attention run on: ours (the default) or
// NVIDIA's libraries, chosen per process by environment variables.
//
//   LOOM_GEMM=loom | cublaslt        (gemm.h / gemm_cublaslt.h)
//   LOOM_ATTENTION=loom | cudnn      (attention.h / attention_cudnn.h)
//
//   LOOM_RETURN_IF_ERROR(LaunchSelectedGemm(problem, stream));
//
// An unset or empty variable means "loom"; any other value is an error that
// names the variable and the accepted values. The cuBLASLt and cuDNN paths are
// unverified on a GPU (see their headers) and cover a subset of problems
// (cuDNN: bf16/f16, head dims up to 256); the error of an unsupported problem
// says so.
#ifndef LOOM_KERNELS_CUDA_KERNEL_SELECT_H_
#define LOOM_KERNELS_CUDA_KERNEL_SELECT_H_

#include <cuda_runtime_api.h>

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/gemm.h"

namespace loom::cuda {

enum class GemmImpl { kLoom, kCublasLt };
enum class AttentionImpl { kLoom, kCudnn };

absl::StatusOr<GemmImpl> ParseGemmImpl(absl::string_view value);
absl::StatusOr<AttentionImpl> ParseAttentionImpl(absl::string_view value);
const char* GemmImplName(GemmImpl impl);
const char* AttentionImplName(AttentionImpl impl);

// From LOOM_GEMM / LOOM_ATTENTION, read on every call.
absl::StatusOr<GemmImpl> GemmImplFromEnv();
absl::StatusOr<AttentionImpl> AttentionImplFromEnv();

absl::Status LaunchGemmWith(GemmImpl impl, const GemmProblem& p, cudaStream_t stream);
absl::Status LaunchAttentionForwardWith(AttentionImpl impl, const AttentionProblem& p,
                                        cudaStream_t stream);
// cuDNN keeps its own scratch: its workspace size is 0.
size_t AttentionBackwardWorkspaceBytesWith(AttentionImpl impl, const AttentionProblem& p);
absl::Status LaunchAttentionBackwardWith(AttentionImpl impl, const AttentionBackwardProblem& p,
                                         cudaStream_t stream);

// The implementations the environment selects (read once per process).
absl::Status LaunchSelectedGemm(const GemmProblem& p, cudaStream_t stream);
absl::Status LaunchSelectedAttentionForward(const AttentionProblem& p, cudaStream_t stream);
size_t SelectedAttentionBackwardWorkspaceBytes(const AttentionProblem& p);
absl::Status LaunchSelectedAttentionBackward(const AttentionBackwardProblem& p,
                                             cudaStream_t stream);

}  // namespace loom::cuda

#endif  // LOOM_KERNELS_CUDA_KERNEL_SELECT_H_
