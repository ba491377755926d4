// Layout adapters for varlen cuDNN attention (see attention_cudnn_varlen.h).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/attention_cudnn_varlen.h"
#include "kernels/cuda/device/compat.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65536;

__global__ void __launch_bounds__(kThreads)
    RaggedPrepareKernel(const int32_t* cu_q, const int32_t* cu_k, int64_t n, RaggedTokenStrides s,
                        RaggedLayout out) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i <= n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t q = cu_q[i], k = cu_k[i];
    out.offset_q[i] = int32_t(q * s.q);
    out.offset_k[i] = int32_t(k * s.k);
    out.offset_v[i] = int32_t(k * s.v);
    out.offset_out[i] = int32_t(q * s.out);
    if (i < n) {
      out.seq_q[i] = cu_q[i + 1] - cu_q[i];
      out.seq_k[i] = cu_k[i + 1] - cu_k[i];
    }
  }
}

// One thread per padded element (i, h, t).
__global__ void __launch_bounds__(kThreads)
    StatsRepackKernel(const int32_t* cu_q, int64_t n, int64_t heads, int64_t max_t, int64_t total,
                      float* padded, float* lse, bool to_packed) {
  const int64_t count = n * heads * max_t;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < count;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = e % max_t, ih = e / max_t, h = ih % heads, i = ih / heads;
    const int64_t begin = cu_q[i], len = cu_q[i + 1] - begin;
    if (t < len) {
      float& packed = lse[h * total + begin + t];
      if (to_packed) {
        packed = padded[e];
      } else {
        padded[e] = packed;
      }
    } else if (!to_packed) {
      padded[e] = 0.0f;  // a padded query row: finite, never used
    }
  }
}

unsigned Blocks(int64_t items) {
  return unsigned(std::clamp<int64_t>((items + kThreads - 1) / kThreads, 1, kMaxBlocks));
}

}  // namespace

absl::Status LaunchCudnnRaggedPrepare(const int32_t* cu_q, const int32_t* cu_k, int64_t n,
                                      const RaggedTokenStrides& strides, const RaggedLayout& out,
                                      cudaStream_t stream) {
  if (n < 1 || cu_q == nullptr || cu_k == nullptr || out.seq_q == nullptr || out.seq_k == nullptr ||
      out.offset_q == nullptr || out.offset_k == nullptr || out.offset_v == nullptr ||
      out.offset_out == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("CudnnRaggedPrepare: need n >= 1 (got ", n, ") and non-null pointers"));
  }
  return Launch<&RaggedPrepareKernel>(
      {.grid = dim3(Blocks(n + 1)), .block = dim3(kThreads), .stream = stream}, cu_q, cu_k, n,
      strides, out);
}

absl::Status LaunchCudnnStatsRepack(const int32_t* cu_q, int64_t n, int64_t heads, int64_t max_t,
                                    int64_t total, float* padded, float* lse, bool to_packed,
                                    cudaStream_t stream) {
  if (n < 1 || heads < 1 || max_t < 1 || total < 0 || cu_q == nullptr || padded == nullptr ||
      lse == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("CudnnStatsRepack: n ", n, ", heads ", heads, ", max_t ", max_t, ", total ",
                     total, " (need n, heads, max_t >= 1) and non-null pointers"));
  }
  return Launch<&StatsRepackKernel>(
      {.grid = dim3(Blocks(n * heads * max_t)), .block = dim3(kThreads), .stream = stream}, cu_q, n,
      heads, max_t, total, padded, lse, to_packed);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
