#include "runtime/ops/random.h"

#include "runtime/backend.h"

namespace loom {

Tensor RandUniform(DimsRef sizes, double low, double high, DType dtype, Device device,
                   Generator* gen) {
  Generator& g = gen != nullptr ? *gen : DefaultGenerator();
  Tensor t = Tensor::Empty(sizes, dtype, device);
  const uint64_t offset = g.Reserve(uint64_t(t.numel()));
  if (t.numel() > 0) GetBackend(device).RandomUniform(t, g.seed(), offset, low, high);
  return t;
}

Tensor RandNormal(DimsRef sizes, double mean, double stddev, DType dtype, Device device,
                  Generator* gen) {
  Generator& g = gen != nullptr ? *gen : DefaultGenerator();
  Tensor t = Tensor::Empty(sizes, dtype, device);
  const uint64_t offset = g.Reserve(uint64_t(t.numel()));
  if (t.numel() > 0) GetBackend(device).RandomNormal(t, g.seed(), offset, mean, stddev);
  return t;
}

}  // namespace loom
