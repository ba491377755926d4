#include "runtime/testing/op_harness.h"

#include <cmath>
#include <map>
#include <mutex>

#include "runtime/backend.h"
#include "runtime/philox.h"

namespace loom::testing {
namespace {

std::mutex g_mu;
std::map<std::string, OpCaseFactory>& Factories() {
  static auto* m = new std::map<std::string, OpCaseFactory>;
  return *m;
}

}  // namespace

RefArray RefArray::Of(const Tensor& t) {
  RefArray r(t.sizes());
  r.v = t.ToDoubles();
  return r;
}

double& RefArray::at(std::initializer_list<int64_t> idx) {
  LOOM_CHECK(idx.size() == sizes.size(), "RefArray::at: %d indices for %d dims", idx.size(), sizes.size());
  int64_t off = 0;
  int d = 0;
  for (int64_t i : idx) {
    LOOM_CHECK(i >= 0 && i < sizes[d], "RefArray::at: index %d out of range in dim %d", i, d);
    off = off * sizes[d++] + i;
  }
  return v[size_t(off)];
}

double RefArray::at(std::initializer_list<int64_t> idx) const {
  return const_cast<RefArray*>(this)->at(idx);
}

Tensor RefArray::ToTensor(DType dtype) const { return Tensor::FromDoubles(v, sizes, dtype); }

bool RegisterOpCases(const char* family, OpCaseFactory factory) {
  std::lock_guard<std::mutex> lock(g_mu);
  Factories()[family] = factory;
  return true;
}

std::vector<OpCase> AllOpCases() {
  std::lock_guard<std::mutex> lock(g_mu);
  std::vector<OpCase> all;
  for (auto& [name, f] : Factories()) {
    for (OpCase& c : f()) all.push_back(std::move(c));
  }
  return all;
}

Tensor RandomNormal(DimsRef sizes, DType dtype, uint64_t seed, double scale) {
  std::vector<double> v(size_t(NumElements(sizes)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = scale * philox::Normal(seed, i);
  return Tensor::FromDoubles(v, sizes, dtype);
}

Tensor RandomUniform(DimsRef sizes, DType dtype, uint64_t seed, double low, double high) {
  std::vector<double> v(size_t(NumElements(sizes)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = low + (high - low) * philox::Uniform(seed, i);
  return Tensor::FromDoubles(v, sizes, dtype);
}

Tensor RandomIndices(DimsRef sizes, int64_t high, uint64_t seed) {
  std::vector<int64_t> v(size_t(NumElements(sizes)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = int64_t(philox::Generate(seed, i).x[0] % uint64_t(high));
  return Tensor::FromVector(v, sizes);
}

double RelativeError(const std::vector<double>& a, const std::vector<double>& b) {
  LOOM_CHECK(a.size() == b.size(), "RelativeError: %d vs %d elements", a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  if (std::isnan(num)) return INFINITY;
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

}  // namespace loom::testing
