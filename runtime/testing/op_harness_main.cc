// Runs every registered op case (see runtime/testing/op_harness.h).
#include <cmath>

#include "gtest/gtest.h"
#include "runtime/ops/ops.h"
#include "runtime/testing/op_harness.h"

namespace loom::testing {
namespace {

class OpHarnessTest : public ::testing::TestWithParam<OpCase> {};

std::vector<double> Flat(const RefArray& r) { return r.v; }

void CheckForward(const OpCase& c, DType dtype, double tol) {
  Inputs in = c.make_inputs(dtype);
  Outputs out;
  {
    NoGradGuard no_grad;
    out = c.op(in);
  }
  RefInputs ref_in;
  for (const Tensor& t : in) ref_in.push_back(RefArray::Of(t));
  RefOutputs ref = c.reference(ref_in);
  ASSERT_EQ(ref.size(), out.size()) << c.name << ": reference returns " << ref.size() << " outputs";
  for (size_t j = 0; j < out.size(); ++j) {
    if (ref[j].sizes.empty() && ref[j].v.empty()) continue;  // not modelled
    ASSERT_EQ(out[j].sizes(), ref[j].sizes) << c.name << " output " << j << " shape "
                                            << out[j].ShapeString() << " vs reference "
                                            << DimsString(ref[j].sizes);
    const double err = RelativeError(out[j].ToDoubles(), Flat(ref[j]));
    EXPECT_LE(err, tol) << c.name << " output " << j << " in " << DTypeName(dtype);
  }
}

// sum_j <out_j, w_j> in f64, without autograd.
double WeightedSum(const OpCase& c, const Inputs& in, const std::vector<std::vector<double>>& w) {
  NoGradGuard no_grad;
  Outputs out = c.op(in);
  double s = 0;
  for (size_t j = 0; j < out.size(); ++j) {
    if (w[j].empty()) continue;
    const std::vector<double> v = out[j].ToDoubles();
    for (size_t i = 0; i < v.size(); ++i) s += v[i] * w[j][i];
  }
  return s;
}

void CheckBackward(const OpCase& c) {
  Inputs in = c.make_inputs(DType::kF64);
  for (int i : c.grad_inputs) in[i].set_requires_grad(true);
  Outputs out = c.op(in);

  std::vector<Tensor> roots, root_grads;
  std::vector<std::vector<double>> w(out.size());
  for (size_t j = 0; j < out.size(); ++j) {
    if (!out[j].requires_grad()) continue;
    Tensor wj = RandomNormal(out[j].sizes(), DType::kF64, 1000 + j);
    w[j] = wj.ToDoubles();
    roots.push_back(out[j]);
    root_grads.push_back(wj);
  }
  ASSERT_FALSE(roots.empty()) << c.name << ": no output requires grad";
  autograd::Backward(roots, root_grads);

  for (int i : c.grad_inputs) {
    Tensor x = in[i];
    ASSERT_TRUE(x.grad().defined()) << c.name << ": no gradient reached input " << i;
    const std::vector<double> analytic = x.grad().ToDoubles();
    std::vector<double> numeric(analytic.size());
    Inputs probe = in;
    Tensor px = Clone(x.Detach());
    probe[i] = px;
    double* p = px.data<double>();
    for (size_t k = 0; k < numeric.size(); ++k) {
      const double orig = p[k];
      p[k] = orig + c.fd_eps;
      const double plus = WeightedSum(c, probe, w);
      p[k] = orig - c.fd_eps;
      const double minus = WeightedSum(c, probe, w);
      p[k] = orig;
      numeric[k] = (plus - minus) / (2 * c.fd_eps);
    }
    EXPECT_LE(RelativeError(analytic, numeric), c.grad_tol) << c.name << " input " << i;
  }
}

TEST_P(OpHarnessTest, ForwardAndBackward) {
  const OpCase& c = GetParam();
  {
    SCOPED_TRACE("forward f64");
    CheckForward(c, DType::kF64, c.f64_tol);
  }
  if (c.check_f32) {
    SCOPED_TRACE("forward f32");
    CheckForward(c, DType::kF32, c.f32_tol);
  }
  if (!c.grad_inputs.empty()) {
    SCOPED_TRACE("backward vs finite differences");
    CheckBackward(c);
  }
}

std::string CaseName(const ::testing::TestParamInfo<OpCase>& info) {
  std::string n = info.param.name;
  for (char& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(AllOps, OpHarnessTest, ::testing::ValuesIn(AllOpCases()), CaseName);

}  // namespace
}  // namespace loom::testing
