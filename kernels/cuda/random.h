// CUDA random fills with Philox4x32-10: the same numbers as kernels/cpu/random.cc.
//
// Element i of `out` gets the value of counter (offset + i) under `seed`, computed in double and
// rounded to the output type the way the CPU kernels round, so a fill is bit-identical on any
// device and any launch configuration. Launches are asynchronous on `stream`; errors in the
// launch itself (no device, bad arguments) come back as a Status.
#ifndef LOOM_KERNELS_CUDA_RANDOM_H_
#define LOOM_KERNELS_CUDA_RANDOM_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "kernels/cuda/device/namespace.h"
#include "runtime/dtype.h"

namespace loom::LOOM_CUDA_NAMESPACE {

// low + (high - low) * philox::Uniform(seed, offset + i), for i in [0, numel).
absl::Status LaunchRandomUniform(void* out, DType dtype, int64_t numel, uint64_t seed,
                                 uint64_t offset, double low, double high, cudaStream_t stream);

// mean + stddev * philox::Normal(seed, offset + i), for i in [0, numel).
absl::Status LaunchRandomNormal(void* out, DType dtype, int64_t numel, uint64_t seed,
                                uint64_t offset, double mean, double stddev, cudaStream_t stream);

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_RANDOM_H_
