// One harness that checks every op: forward against a plain reference, and
// backward against central finite differences in f64.
//
// Each op family registers cases in its own *_cases.cc file:
//
//   LOOM_REGISTER_OP_CASES(SoftmaxCases) {
//     return {{.name = "softmax/rows",
//              .make_inputs = [](DType dt) { return std::vector{RandomNormal({3, 5}, dt, 1)}; },
//              .grad_inputs = {0},
//              .op = [](const Inputs& in) { return Outputs{Softmax(in[0])}; },
//              .reference = [](const RefInputs& in) { return RefOutputs{...plain loops...}; }}};
//   }
//
// and //runtime/ops:op_harness_test runs, for every case:
//   1. forward in f64 vs the reference (relative error <= f64_tol);
//   2. forward in f32 vs the reference on the same (rounded) inputs (<= f32_tol);
//   3. autograd gradients of sum_j <out_j, w_j> (w_j fixed random weights) vs
//      central finite differences in f64 (<= grad_tol), for every grad input.
// Relative error is ||a - b|| / ||b|| (||b|| = 0 compares ||a|| to the tolerance).
#ifndef LOOM_RUNTIME_TESTING_OP_HARNESS_H_
#define LOOM_RUNTIME_TESTING_OP_HARNESS_H_

#include <functional>
#include <string>
#include <vector>

#include "runtime/tensor.h"

namespace loom::testing {

// A row-major array of doubles: the value type of reference implementations.
struct RefArray {
  Dims sizes;
  std::vector<double> v;

  RefArray() = default;
  RefArray(DimsRef s) : sizes(s.begin(), s.end()), v(size_t(NumElements(s)), 0.0) {}
  static RefArray Of(const Tensor& t);
  int64_t numel() const { return int64_t(v.size()); }
  int64_t size(int d) const { return sizes[d < 0 ? d + int(sizes.size()) : d]; }
  // Element at a multi-index.
  double& at(std::initializer_list<int64_t> idx);
  double at(std::initializer_list<int64_t> idx) const;
  Tensor ToTensor(DType dtype) const;
};

using Inputs = std::vector<Tensor>;
using Outputs = std::vector<Tensor>;
using RefInputs = std::vector<RefArray>;
using RefOutputs = std::vector<RefArray>;

struct OpCase {
  std::string name;  // "family/variant"; letters, digits, '_' and '/'
  // Inputs with floating ones in `dtype`; integer inputs keep their own dtype.
  std::function<Inputs(DType dtype)> make_inputs;
  // Inputs to differentiate (floating). Empty: forward checks only.
  std::vector<int> grad_inputs;
  std::function<Outputs(const Inputs&)> op;
  // Plain reference over doubles. Outputs it does not model may be left empty
  // (RefArray with no sizes) and are then not compared.
  std::function<RefOutputs(const RefInputs&)> reference;
  double f64_tol = 1e-10;
  double f32_tol = 1e-5;
  double grad_tol = 1e-6;
  double fd_eps = 1e-6;
  bool check_f32 = true;
};

using OpCaseFactory = std::vector<OpCase> (*)();
bool RegisterOpCases(const char* family, OpCaseFactory factory);
std::vector<OpCase> AllOpCases();

#define LOOM_REGISTER_OP_CASES(fn)                                              \
  static std::vector<::loom::testing::OpCase> fn();                             \
  static const bool fn##_registered = ::loom::testing::RegisterOpCases(#fn, fn); \
  static std::vector<::loom::testing::OpCase> fn()

// Input helpers, deterministic in `seed`.
Tensor RandomNormal(DimsRef sizes, DType dtype, uint64_t seed, double scale = 1.0);
// Uniform in [low, high).
Tensor RandomUniform(DimsRef sizes, DType dtype, uint64_t seed, double low, double high);
// Integers in [0, high) as i64.
Tensor RandomIndices(DimsRef sizes, int64_t high, uint64_t seed);

// Runs `c` in bf16: the forward against the reference evaluated on the same
// (bf16-rounded) inputs, and the gradients against those of the f64 op on
// those inputs. For the gtest bodies of 16-bit tests.
void ExpectBf16MatchesF64(const OpCase& c, double fwd_tol, double grad_tol);

// ||a - b|| / ||b||, over all elements (b's norm floored at 1e-30).
double RelativeError(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace loom::testing

#endif  // LOOM_RUNTIME_TESTING_OP_HARNESS_H_
