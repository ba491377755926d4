// Random tensors from the Philox generator: the same values on every device
// for the same seed and sequence of calls.
#ifndef LOOM_RUNTIME_OPS_RANDOM_H_
#define LOOM_RUNTIME_OPS_RANDOM_H_

#include "runtime/random.h"
#include "runtime/tensor.h"

namespace loom {

// Uniform in [low, high). `gen` defaults to DefaultGenerator().
Tensor RandUniform(DimsRef sizes, double low, double high, DType dtype = DType::kF32,
                   Device device = Device::CPU(), Generator* gen = nullptr);
// Normal(mean, stddev).
Tensor RandNormal(DimsRef sizes, double mean, double stddev, DType dtype = DType::kF32,
                  Device device = Device::CPU(), Generator* gen = nullptr);

}  // namespace loom

#endif  // LOOM_RUNTIME_OPS_RANDOM_H_
