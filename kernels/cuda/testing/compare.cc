#include "kernels/cuda/testing/compare.h"

#include <algorithm>
#include <cmath>

#include "runtime/status.h"

namespace loom::kernel_testing {

Tol Tolerance(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return {1e-12, 1e-12};
    case DType::kF32:
      return {1e-6, 2e-6};  // ~16 ulp relative: a few roundings of f32 arithmetic
    case DType::kBF16:
      return {1e-2, 1e-2};  // 1.3 ulp of an 8-bit significand
    case DType::kF16:
      return {1e-3, 2e-3};  // 2 ulp of an 11-bit significand
    default:
      return {};
  }
}

bool IsNear(double got, double want, Tol tol) {
  if (std::isnan(want) || std::isnan(got)) return std::isnan(want) && std::isnan(got);
  if (std::isinf(want) || std::isinf(got)) return got == want;
  return std::abs(got - want) <= tol.atol + tol.rtol * std::abs(want);
}

::testing::AssertionResult Near(double got, double want, Tol tol) {
  if (IsNear(got, want, tol)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "got " << got << ", want " << want << " (error " << std::abs(got - want) << ", atol "
         << tol.atol << " + rtol " << tol.rtol << " * |want|)";
}

::testing::AssertionResult Same(double got, double want) {
  if (got == want || (std::isnan(got) && std::isnan(want))) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want exactly " << want;
}

double RelativeError(const std::vector<double>& got, const std::vector<double>& want) {
  LOOM_CHECK(got.size() == want.size(), "RelativeError of %d and %d elements", got.size(),
             want.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i])) return NAN;
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

}  // namespace loom::kernel_testing
