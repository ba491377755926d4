// Loom vs PyTorch 1.13 on tests/goldens/torch_ops.json (written by
// tools/goldens/gen_torch_goldens.py): for every golden case, our op runs on
// the stored inputs, backpropagates the stored upstream gradient, and every
// output and gradient must satisfy ||ours - torch|| / ||torch|| <= 1e-5 (f32
// cases) or <= 1e-10 (f64 cases: f64 exposes formula slips, such as where an
// eps goes, that f32 rounding could hide). Achieved errors are printed as a
// table at the end.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/ops/activation.h"
#include "runtime/ops/attention.h"
#include "runtime/ops/elementwise.h"
#include "runtime/ops/embedding.h"
#include "runtime/ops/loss.h"
#include "runtime/ops/matmul.h"
#include "runtime/ops/norm.h"
#include "runtime/ops/rope.h"
#include "runtime/ops/softmax.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/clip_grad.h"

namespace loom {
namespace {

using nlohmann::json;
using TensorMap = std::map<std::string, Tensor>;

constexpr char kGoldensPath[] = "tests/goldens/torch_ops.json";

const json& Goldens() {
  static const json* goldens = [] {
    std::ifstream in(kGoldensPath);
    LOOM_CHECK(in.good(), "cannot open %s (run from the workspace root, as bazel test does)",
               kGoldensPath);
    return new json(json::parse(in));
  }();
  return *goldens;
}

std::vector<const json*> CasesOf(const std::string& op) {
  std::vector<const json*> cases;
  for (const json& c : Goldens().at("cases")) {
    if (c.at("op") == op) cases.push_back(&c);
  }
  return cases;
}

Tensor FromJson(const json& t) {
  absl::StatusOr<DType> dtype = DTypeFromName(t.at("dtype").get<std::string>());
  LOOM_CHECK_OK(dtype.status());
  const std::vector<int64_t> shape = t.at("shape").get<std::vector<int64_t>>();
  return Tensor::FromDoubles(t.at("data").get<std::vector<double>>(), shape, *dtype);
}

// ---- Error bookkeeping: every comparison is kept for the final table.

struct Row {
  std::string case_name, what;
  double error, bound;
};

std::vector<Row>& Rows() {
  static std::vector<Row> rows;
  return rows;
}

double Bound(const json& c) { return c.at("dtype") == "f64" ? 1e-10 : 1e-5; }

// Checks ours against the golden tensor: same shape, relative L2 error <= bound.
void Compare(const json& c, const std::string& what, const Tensor& ours, const json& golden) {
  const std::string name = c.at("name");
  const Tensor ref = FromJson(golden);
  ASSERT_TRUE(ours.defined()) << name << ": no " << what;
  ASSERT_EQ(ours.sizes(), ref.sizes()) << name << ": " << what << " has shape "
                                       << ours.ShapeString() << ", torch's " << ref.ShapeString();
  const std::vector<double> a = ours.ToDoubles(), b = ref.ToDoubles();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  const double error = norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
  const double bound = Bound(c);
  Rows().push_back({name, what, error, bound});
  std::printf("[parity] %-40s %-16s rel_err %.3e\n", name.c_str(), what.c_str(), error);
  EXPECT_LE(error, bound) << name << ": " << what;  // NaN fails too
}

class ParityTable : public ::testing::Environment {
 public:
  void TearDown() override {
    std::printf("\n%-40s %-16s %-10s %s\n", "case", "tensor", "rel_err", "bound");
    for (const Row& r : Rows()) {
      std::printf("%-40s %-16s %.3e  %.0e%s\n", r.case_name.c_str(), r.what.c_str(), r.error,
                  r.bound, r.error <= r.bound ? "" : "  FAIL");
    }
  }
};
[[maybe_unused]] ::testing::Environment* const kParityTable =
    ::testing::AddGlobalTestEnvironment(new ParityTable);

// ---- Differentiable ops: the output, then d(<out, upstream>)/d(input).

using OpFn = std::function<Tensor(const TensorMap& in, const json& attrs, DType dtype)>;

const std::map<std::string, OpFn>& OpRunners() {
  static const auto* runners = new std::map<std::string, OpFn>{
      {"matmul",
       [](const TensorMap& in, const json&, DType) { return MatMul(in.at("a"), in.at("b")); }},
      {"linear",
       [](const TensorMap& in, const json&, DType) {
         return Linear(in.at("x"), in.at("weight"), in.count("bias") ? in.at("bias") : Tensor());
       }},
      {"softmax", [](const TensorMap& in, const json& attrs,
                     DType) { return Softmax(in.at("x"), attrs.at("dim").get<int>()); }},
      {"log_softmax", [](const TensorMap& in, const json& attrs,
                         DType) { return LogSoftmax(in.at("x"), attrs.at("dim").get<int>()); }},
      {"cross_entropy",
       [](const TensorMap& in, const json& attrs, DType) {
         const Reduction reduction =
             attrs.at("reduction") == "sum" ? Reduction::kSum : Reduction::kMean;
         return CrossEntropy(in.at("logits"), in.at("labels"), reduction,
                             attrs.at("ignore_index").get<int64_t>());
       }},
      {"embedding", [](const TensorMap& in, const json&,
                       DType) { return Embedding(in.at("ids"), in.at("weight")); }},
      {"rms_norm",
       [](const TensorMap& in, const json& attrs, DType) {
         return RmsNorm(in.at("x"), in.at("weight"), attrs.at("eps").get<double>());
       }},
      {"rope",
       [](const TensorMap& in, const json& attrs, DType dtype) {
         const Tensor& x = in.at("x");
         return ApplyRope(x, in.at("positions"),
                          RopeInvFreq(x.size(-1), attrs.at("theta").get<double>(), dtype));
       }},
      {"swiglu",
       [](const TensorMap& in, const json&, DType) { return SwiGlu(in.at("gate"), in.at("up")); }},
      {"silu", [](const TensorMap& in, const json&, DType) { return Silu(in.at("x")); }},
      {"attention",
       [](const TensorMap& in, const json& attrs, DType) {
         AttentionOptions options;
         options.causal = attrs.at("causal").get<bool>();
         options.scale = attrs.at("scale").get<double>();
         if (in.count("cu_seqlens")) {
           options.cu_seqlens_q = in.at("cu_seqlens");
           options.cu_seqlens_k = in.at("cu_seqlens");
         }
         return ScaledDotProductAttention(in.at("q"), in.at("k"), in.at("v"), options);
       }},
  };
  return *runners;
}

void RunDifferentiableCase(const json& c) {
  SCOPED_TRACE(c.at("name").get<std::string>());
  const absl::StatusOr<DType> dtype = DTypeFromName(c.at("dtype").get<std::string>());
  LOOM_CHECK_OK(dtype.status());
  TensorMap inputs;
  for (const auto& [key, value] : c.at("inputs").items()) {
    inputs[key] = FromJson(value);
    if (c.at("grads").contains(key)) inputs[key].set_requires_grad(true);
  }
  const Tensor out = OpRunners().at(c.at("op"))(inputs, c.at("attrs"), *dtype);
  ASSERT_EQ(out.dtype(), *dtype);
  Compare(c, "out", out, c.at("outputs").at("out"));
  const Tensor upstream = FromJson(c.at("upstream"));
  ASSERT_EQ(out.sizes(), upstream.sizes());
  ASSERT_TRUE(out.requires_grad());
  out.Backward(upstream);
  for (const auto& [key, golden] : c.at("grads").items()) {
    Compare(c, "grad_" + key, inputs.at(key).grad(), golden);
  }
}

void RunOp(const std::string& op) {
  const std::vector<const json*> cases = CasesOf(op);
  ASSERT_FALSE(cases.empty()) << "no golden cases for " << op;
  for (const json* c : cases) RunDifferentiableCase(*c);
}

TEST(TorchParity, MatMul) { RunOp("matmul"); }
TEST(TorchParity, Linear) { RunOp("linear"); }
TEST(TorchParity, Softmax) { RunOp("softmax"); }
TEST(TorchParity, LogSoftmax) { RunOp("log_softmax"); }
TEST(TorchParity, CrossEntropy) { RunOp("cross_entropy"); }
TEST(TorchParity, Embedding) { RunOp("embedding"); }
TEST(TorchParity, RmsNorm) { RunOp("rms_norm"); }
TEST(TorchParity, Rope) { RunOp("rope"); }
TEST(TorchParity, SwiGlu) { RunOp("swiglu"); }
TEST(TorchParity, Silu) { RunOp("silu"); }
TEST(TorchParity, Attention) { RunOp("attention"); }

// ---- Optimizer and clipping.

TEST(TorchParity, AdamW) {
  const std::vector<const json*> cases = CasesOf("adamw");
  ASSERT_FALSE(cases.empty());
  for (const json* cp : cases) {
    const json& c = *cp;
    SCOPED_TRACE(c.at("name").get<std::string>());
    const json& attrs = c.at("attrs");
    const std::vector<std::string> names = attrs.at("params").get<std::vector<std::string>>();
    std::vector<ParamGroup> groups;
    std::vector<Tensor> params;
    for (const std::string& n : names) {
      params.push_back(FromJson(c.at("inputs").at(n)));
      params.back().set_requires_grad(true);
      groups.push_back({.params = {params.back()},
                        .weight_decay = attrs.at("weight_decay").at(n).get<double>()});
    }
    AdamW opt(groups, {.lr = attrs.at("lr").get<double>(),
                       .beta1 = attrs.at("beta1").get<double>(),
                       .beta2 = attrs.at("beta2").get<double>(),
                       .eps = attrs.at("eps").get<double>()});
    for (int step = 1; step <= 2; ++step) {
      for (size_t i = 0; i < names.size(); ++i) {
        params[i].set_grad(
            FromJson(c.at("inputs").at(absl::StrFormat("grad%d_%s", step, names[i]))));
      }
      opt.Step();
      for (size_t i = 0; i < names.size(); ++i) {
        const std::string key = absl::StrFormat("step%d_%s", step, names[i]);
        Compare(c, key, params[i], c.at("outputs").at(key));
      }
    }
    for (size_t i = 0; i < names.size(); ++i) {
      Compare(c, "exp_avg_" + names[i], opt.exp_avg(i), c.at("outputs").at("exp_avg_" + names[i]));
      Compare(c, "exp_avg_sq_" + names[i], opt.exp_avg_sq(i),
              c.at("outputs").at("exp_avg_sq_" + names[i]));
    }
  }
}

TEST(TorchParity, ClipGradNorm) {
  const std::vector<const json*> cases = CasesOf("clip_grad_norm");
  ASSERT_FALSE(cases.empty());
  for (const json* cp : cases) {
    const json& c = *cp;
    SCOPED_TRACE(c.at("name").get<std::string>());
    const std::vector<std::string> names =
        c.at("attrs").at("grads").get<std::vector<std::string>>();
    std::vector<Tensor> params;
    for (const std::string& n : names) {
      const Tensor grad = FromJson(c.at("inputs").at(n));
      params.push_back(Tensor::Zeros(grad.sizes(), grad.dtype()));
      params.back().set_requires_grad(true);
      params.back().set_grad(grad);
    }
    const double norm = ClipGradNorm(params, c.at("attrs").at("max_norm").get<double>());
    Compare(c, "total_norm", Tensor::Scalar(norm, DType::kF64), c.at("outputs").at("total_norm"));
    for (size_t i = 0; i < names.size(); ++i) {
      Compare(c, "clipped_" + names[i], params[i].grad(),
              c.at("outputs").at("clipped_" + names[i]));
    }
  }
}

// A golden case whose op has no runner here would silently go unchecked.
TEST(TorchParity, EveryGoldenCaseIsChecked) {
  std::set<std::string> known = {"adamw", "clip_grad_norm"};
  for (const auto& [op, fn] : OpRunners()) known.insert(op);
  std::set<std::string> names;
  for (const json& c : Goldens().at("cases")) {
    EXPECT_TRUE(known.count(c.at("op"))) << c.at("name") << ": op " << c.at("op");
    EXPECT_TRUE(names.insert(c.at("name")).second) << "duplicate case " << c.at("name");
  }
  EXPECT_GE(names.size(), 30u);
}

}  // namespace
}  // namespace loom
