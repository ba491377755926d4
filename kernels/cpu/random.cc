// CPU random fills with Philox4x32-10: identical numbers to the CUDA kernels.
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/loops.h"
#include "runtime/philox.h"

namespace loom::cpu {

void CpuBackend::RandomUniform(const Tensor& out, uint64_t seed, uint64_t offset, double low,
                               double high) {
  LOOM_CHECK(out.is_contiguous(), "RandomUniform needs a contiguous output");
  DispatchFloating(out.dtype(), "RandomUniform", [&](auto tag) {
    using T = decltype(tag);
    T* o = static_cast<T*>(out.raw_data());
    ForEachFlat(out.numel(), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const double u = philox::Uniform(seed, offset + uint64_t(i));
        o[i] = FromDouble<T>(low + (high - low) * u);
      }
    });
  });
}

void CpuBackend::RandomNormal(const Tensor& out, uint64_t seed, uint64_t offset, double mean,
                              double stddev) {
  LOOM_CHECK(out.is_contiguous(), "RandomNormal needs a contiguous output");
  DispatchFloating(out.dtype(), "RandomNormal", [&](auto tag) {
    using T = decltype(tag);
    T* o = static_cast<T*>(out.raw_data());
    ForEachFlat(out.numel(), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        o[i] = FromDouble<T>(mean + stddev * philox::Normal(seed, offset + uint64_t(i)));
      }
    });
  });
}

}  // namespace loom::cpu
