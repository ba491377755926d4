#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/random.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/philox.h"

namespace loom::cuda {
namespace {

constexpr int kThreads = 256;
// Enough blocks to fill any current GPU; larger fills loop (grid-stride).
constexpr int64_t kMaxBlocks = 4096;

// Double to the stored type, rounding like FromDouble<T> in runtime/dtype.h: 16-bit floats go
// through float, then round to nearest even.
template <typename T>
__device__ inline T FromDouble(double v);
template <>
__device__ inline float FromDouble<float>(double v) {
  return static_cast<float>(v);
}
template <>
__device__ inline double FromDouble<double>(double v) {
  return v;
}
template <>
__device__ inline __nv_bfloat16 FromDouble<__nv_bfloat16>(double v) {
  return __float2bfloat16_rn(static_cast<float>(v));
}
template <>
__device__ inline __half FromDouble<__half>(double v) {
  return __float2half_rn(static_cast<float>(v));
}

template <typename T>
__global__ void UniformKernel(T* out, int64_t numel, uint64_t seed, uint64_t offset, double low,
                              double scale) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += stride) {
    const double u = philox::Uniform(seed, offset + uint64_t(i));
    // Separately rounded multiply and add (never a fused FMA), as the host computes it.
    out[i] = FromDouble<T>(__dadd_rn(low, __dmul_rn(scale, u)));
  }
}

template <typename T>
__global__ void NormalKernel(T* out, int64_t numel, uint64_t seed, uint64_t offset, double mean,
                             double stddev) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < numel; i += stride) {
    const double z = philox::Normal(seed, offset + uint64_t(i));
    out[i] = FromDouble<T>(__dadd_rn(mean, __dmul_rn(stddev, z)));
  }
}

absl::Status CheckArgs(const char* op, const void* out, DType dtype, int64_t numel) {
  if (numel < 0) return absl::InvalidArgumentError(absl::StrCat(op, ": numel ", numel, " < 0"));
  if (numel > 0 && out == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": null output for ", numel, " elements"));
  }
  if (!IsFloating(dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": output dtype ", DTypeName(dtype),
                                                   " is not floating (f32, f64, bf16, f16)"));
  }
  return absl::OkStatus();
}

// Launches kernel<T> for `dtype` and reports launch errors.
template <template <typename> class Launch>
absl::Status LaunchForDType(const char* op, void* out, DType dtype, int64_t numel,
                            cudaStream_t stream, double a, double b, uint64_t seed,
                            uint64_t offset) {
  if (numel == 0) return absl::OkStatus();
  const int blocks = int(std::min<int64_t>((numel + kThreads - 1) / kThreads, kMaxBlocks));
  // Clear a stale error of an earlier call so that the check below reports this launch only.
  cudaGetLastError();
  switch (dtype) {
    case DType::kF32:
      Launch<float>::Run(blocks, stream, static_cast<float*>(out), numel, seed, offset, a, b);
      break;
    case DType::kF64:
      Launch<double>::Run(blocks, stream, static_cast<double*>(out), numel, seed, offset, a, b);
      break;
    case DType::kBF16:
      Launch<__nv_bfloat16>::Run(blocks, stream, static_cast<__nv_bfloat16*>(out), numel, seed,
                                 offset, a, b);
      break;
    case DType::kF16:
      Launch<__half>::Run(blocks, stream, static_cast<__half*>(out), numel, seed, offset, a, b);
      break;
    default:
      return absl::InternalError("unreachable: dtype checked by CheckArgs");
  }
  const std::string what =
      absl::StrCat(op, " kernel launch (", DTypeName(dtype), ", ", numel, " elements)");
  return CudaErrorToStatus(cudaGetLastError(), what.c_str(), __FILE__, __LINE__);
}

template <typename T>
struct UniformLaunch {
  static void Run(int blocks, cudaStream_t stream, T* out, int64_t numel, uint64_t seed,
                  uint64_t offset, double low, double high) {
    UniformKernel<T><<<blocks, kThreads, 0, stream>>>(out, numel, seed, offset, low, high - low);
  }
};

template <typename T>
struct NormalLaunch {
  static void Run(int blocks, cudaStream_t stream, T* out, int64_t numel, uint64_t seed,
                  uint64_t offset, double mean, double stddev) {
    NormalKernel<T><<<blocks, kThreads, 0, stream>>>(out, numel, seed, offset, mean, stddev);
  }
};

}  // namespace

absl::Status LaunchRandomUniform(void* out, DType dtype, int64_t numel, uint64_t seed,
                                 uint64_t offset, double low, double high, cudaStream_t stream) {
  if (absl::Status s = CheckArgs("RandomUniform", out, dtype, numel); !s.ok()) return s;
  return LaunchForDType<UniformLaunch>("RandomUniform", out, dtype, numel, stream, low, high, seed,
                                       offset);
}

absl::Status LaunchRandomNormal(void* out, DType dtype, int64_t numel, uint64_t seed,
                                uint64_t offset, double mean, double stddev, cudaStream_t stream) {
  if (absl::Status s = CheckArgs("RandomNormal", out, dtype, numel); !s.ok()) return s;
  return LaunchForDType<NormalLaunch>("RandomNormal", out, dtype, numel, stream, mean, stddev, seed,
                                      offset);
}

}  // namespace loom::cuda
