// Random fills (see random.h).
#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/random.h"
#include "runtime/philox.h"

namespace loom::LOOM_CUDA_NAMESPACE {
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
template <template <typename> class Fill>
absl::Status LaunchForDType(const char* op, void* out, DType dtype, int64_t numel,
                            cudaStream_t stream, double a, double b, uint64_t seed,
                            uint64_t offset) {
  if (numel == 0) return absl::OkStatus();
  const LaunchConfig config{
      .grid = dim3(unsigned(std::min<int64_t>((numel + kThreads - 1) / kThreads, kMaxBlocks))),
      .block = dim3(kThreads),
      .stream = stream};
  switch (dtype) {
    case DType::kF32:
      return Fill<float>::Run(config, static_cast<float*>(out), numel, seed, offset, a, b);
    case DType::kF64:
      return Fill<double>::Run(config, static_cast<double*>(out), numel, seed, offset, a, b);
    case DType::kBF16:
      return Fill<__nv_bfloat16>::Run(config, static_cast<__nv_bfloat16*>(out), numel, seed, offset,
                                      a, b);
    case DType::kF16:
      return Fill<__half>::Run(config, static_cast<__half*>(out), numel, seed, offset, a, b);
    default:
      return absl::InternalError(absl::StrCat(op, ": unreachable: dtype checked by CheckArgs"));
  }
}

template <typename T>
struct UniformLaunch {
  static absl::Status Run(const LaunchConfig& config, T* out, int64_t numel, uint64_t seed,
                          uint64_t offset, double low, double high) {
    return Launch<&UniformKernel<T>>(config, out, numel, seed, offset, low, high - low);
  }
};

template <typename T>
struct NormalLaunch {
  static absl::Status Run(const LaunchConfig& config, T* out, int64_t numel, uint64_t seed,
                          uint64_t offset, double mean, double stddev) {
    return Launch<&NormalKernel<T>>(config, out, numel, seed, offset, mean, stddev);
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

}  // namespace loom::LOOM_CUDA_NAMESPACE
