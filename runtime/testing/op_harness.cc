#include "runtime/testing/op_harness.h"

#include <cmath>
#include <map>
#include <mutex>

#include "gtest/gtest.h"
#include "runtime/backend.h"
#include "runtime/ops/ops.h"
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

void ExpectBf16MatchesF64(const OpCase& c, double fwd_tol, double grad_tol) {
  SCOPED_TRACE(c.name);
  Inputs in16 = c.make_inputs(DType::kBF16), in64;
  for (const Tensor& t : in16) in64.push_back(IsFloating(t.dtype()) ? Cast(t, DType::kF64) : t);
  for (int i : c.grad_inputs) {
    in16[i].set_requires_grad(true);
    in64[i].set_requires_grad(true);
  }
  Outputs out16 = c.op(in16), out64 = c.op(in64);
  RefInputs ref_in;
  for (const Tensor& t : in64) ref_in.push_back(RefArray::Of(t));
  const RefOutputs ref = c.reference(ref_in);
  std::vector<Tensor> roots16, roots64, w16, w64;
  for (size_t j = 0; j < out16.size(); ++j) {
    EXPECT_LE(RelativeError(out16[j].ToDoubles(), ref[j].v), fwd_tol) << "output " << j;
    if (!out16[j].requires_grad()) continue;
    roots16.push_back(out16[j]);
    roots64.push_back(out64[j]);
    w16.push_back(RandomNormal(out16[j].sizes(), out16[j].dtype(), 50 + j));
    w64.push_back(Cast(w16.back(), DType::kF64));
  }
  if (c.grad_inputs.empty()) return;
  autograd::Backward(roots16, w16);
  autograd::Backward(roots64, w64);
  for (int i : c.grad_inputs) {
    EXPECT_EQ(in16[i].grad().dtype(), DType::kBF16);
    EXPECT_LE(RelativeError(in16[i].grad().ToDoubles(), in64[i].grad().ToDoubles()), grad_tol)
        << "gradient of input " << i;
  }
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
