// The autograd engine: gradient accumulation, grad mode, Detach, freeing of
// saved tensors, retain_graph, hooks, grad dtypes, fan-out and diamonds,
// custom functions and the errors a user can hit.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/allocator.h"
#include "runtime/autograd/engine.h"
#include "runtime/autograd/function.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/ops/ops.h"

namespace loom::autograd {
namespace {

Tensor Leaf(const std::vector<double>& v, DType dtype = DType::kF64) {
  Tensor t = Tensor::FromDoubles(v, {int64_t(v.size())}, dtype);
  t.set_requires_grad(true);
  return t;
}

TEST(AutogradTest, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = Leaf({1, -2, 3});
  Sum(Mul(x, x)).Backward();
  EXPECT_EQ(x.grad().ToDoubles(), (std::vector<double>{2, -4, 6}));
  const Tensor first = x.grad();
  Sum(Mul(x, x)).Backward();
  EXPECT_EQ(x.grad().ToDoubles(), (std::vector<double>{4, -8, 12}));
  EXPECT_TRUE(x.grad().is_same(first));  // accumulated in place
  x.set_grad(Tensor());
  Sum(x).Backward();
  EXPECT_EQ(x.grad().ToDoubles(), (std::vector<double>{1, 1, 1}));
}

TEST(AutogradTest, NoGradGuardRecordsNothing) {
  Tensor x = Leaf({1, 2});
  EXPECT_TRUE(GradMode::IsEnabled());
  {
    NoGradGuard no_grad;
    EXPECT_FALSE(GradMode::IsEnabled());
    Tensor y = Mul(Exp(x), x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    EXPECT_TRUE(y.is_leaf());
    Tensor v = Transpose(Reshape(x, {1, 2}), 0, 1);  // views too
    EXPECT_FALSE(v.requires_grad());
    {
      GradModeGuard enable(true);  // re-enabled in a nested scope
      EXPECT_TRUE(Mul(x, x).requires_grad());
    }
    EXPECT_FALSE(GradMode::IsEnabled());
  }
  EXPECT_TRUE(GradMode::IsEnabled());
  Tensor z = Mul(x, x);
  EXPECT_TRUE(z.requires_grad());
  ASSERT_NE(z.grad_fn(), nullptr);
  EXPECT_EQ(z.grad_fn()->name(), "MulBackward");
  // Inputs that do not require grad record nothing either.
  EXPECT_EQ(Exp(Tensor::Ones({2}, DType::kF64)).grad_fn(), nullptr);
}

TEST(AutogradTest, DetachCutsHistory) {
  Tensor x = Leaf({0.5, 1.5});
  Tensor y = Exp(x);
  Tensor d = y.Detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_EQ(d.storage(), y.storage());
  // d(x * stop_gradient(exp(x)))/dx = exp(x): no term through d.
  Sum(Mul(x, d)).Backward();
  EXPECT_EQ(x.grad().ToDoubles(), y.ToDoubles());
}

// Builds a graph whose saved activations take several [512, 512] f32 tensors
// and returns its scalar root; only the graph holds the intermediates.
Tensor BuildLargeGraph(const Tensor& x, const Tensor& w) {
  Tensor a = Exp(MulScalar(x, 0.01));
  Tensor b = Mul(a, w);
  Tensor c = Exp(MulScalar(b, 0.5));
  Tensor d = Mul(c, a);
  return Sum(Mul(d, x));
}

TEST(AutogradTest, BackwardFreesSavedTensorsWhileTheRootIsAlive) {
  constexpr int64_t kBytes = 512 * 512 * 4;
  Tensor x = Tensor::Full({512, 512}, 0.5, DType::kF32);
  Tensor w = Tensor::Full({512, 512}, 0.25, DType::kF32);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  const int64_t baseline = GetMemoryStats(Device::CPU()).current_bytes;
  Tensor loss = BuildLargeGraph(x, w);
  // a, b, c, d and exp's outputs are held by the graph.
  EXPECT_GE(GetMemoryStats(Device::CPU()).current_bytes, baseline + 4 * kBytes);
  loss.Backward();
  ASSERT_TRUE(x.grad().defined() && w.grad().defined());
  // Left: the two .grad tensors and the 1-element root.
  EXPECT_EQ(GetMemoryStats(Device::CPU()).current_bytes,
            baseline + int64_t(x.grad().nbytes() + w.grad().nbytes()) + int64_t(loss.nbytes()));
  EXPECT_NE(loss.grad_fn(), nullptr);  // the root still has its (now empty) graph
}

TEST(AutogradDeathTest, SecondBackwardWithoutRetainGraphDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Tensor x = Leaf({1, 2, 3});
  Tensor loss = Sum(Exp(x));
  loss.Backward();
  EXPECT_DEATH(loss.Backward(), "saved tensors were freed.*retain_graph=true");
}

TEST(AutogradTest, RetainGraphAllowsASecondBackward) {
  Tensor x = Leaf({1, 2, 3});
  Tensor loss = Sum(Mul(Exp(x), x));
  loss.Backward(Tensor(), /*retain_graph=*/true);
  const std::vector<double> once = x.grad().ToDoubles();
  loss.Backward();  // the last one may free
  std::vector<double> want;
  for (double v : x.ToDoubles()) want.push_back(2 * (std::exp(v) * v + std::exp(v)));
  const std::vector<double> got = x.grad().ToDoubles();
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i], 2 * once[i]);
    EXPECT_NEAR(got[i], want[i], 1e-12 * std::fabs(want[i]));
  }
}

TEST(AutogradTest, PostAccumulateGradHooksFireOncePerBackwardWithTheGradSet) {
  Tensor a = Leaf({1, 2});
  Tensor b = Leaf({3, 4});
  std::vector<std::string> log;
  std::vector<std::vector<double>> seen_a;
  a.AddPostAccumulateGradHook([&](const Tensor& leaf) {
    EXPECT_TRUE(leaf.is_same(a));
    ASSERT_TRUE(leaf.grad().defined());
    seen_a.push_back(leaf.grad().ToDoubles());
    log.push_back("a");
  });
  b.AddPostAccumulateGradHook([&](const Tensor& leaf) {
    ASSERT_TRUE(leaf.grad().defined());
    log.push_back("b");
  });
  // a is used three times: its gradient is summed before the hook runs once.
  auto loss = [&] { return Sum(Add(Mul(a, b), Mul(a, a))); };
  loss().Backward();
  EXPECT_EQ(log.size(), 2u);
  ASSERT_EQ(seen_a.size(), 1u);
  EXPECT_EQ(seen_a[0], (std::vector<double>{3 + 2, 4 + 4}));  // b + 2a
  loss().Backward();
  EXPECT_EQ(log.size(), 4u);
  EXPECT_EQ(std::count(log.begin(), log.end(), "a"), 2);
  ASSERT_EQ(seen_a.size(), 2u);
  EXPECT_EQ(seen_a[1], (std::vector<double>{10, 16}));  // accumulated by then
}

TEST(AutogradTest, GradDtypeAccumulatesInF32ForABf16Leaf) {
  Tensor x = Leaf({1, 2, 3}, DType::kBF16);
  x.set_grad_dtype(DType::kF32);
  MulScalar(x, 1.0).Backward(Tensor::Ones({3}, DType::kBF16));
  ASSERT_EQ(x.grad().dtype(), DType::kF32);
  // 1 + 2^-10 is exact in f32 but not in bf16 (8 significant bits).
  MulScalar(x, 1.0).Backward(Tensor::Full({3}, 0x1p-10, DType::kBF16));
  EXPECT_EQ(x.grad().dtype(), DType::kF32);
  EXPECT_EQ(x.grad().ToDoubles(), std::vector<double>(3, 1.0 + 0x1p-10));
  // Without a grad dtype the grad has the leaf's dtype.
  Tensor y = Leaf({1}, DType::kBF16);
  MulScalar(y, 3.0).Backward();
  EXPECT_EQ(y.grad().dtype(), DType::kBF16);
  EXPECT_EQ(y.grad().item(), 3.0);
}

TEST(AutogradTest, ATensorUsedTwiceGetsSummedGradients) {
  Tensor x = Leaf({0.5, -1, 2});
  Sum(Add(Mul(x, x), x)).Backward();  // d/dx (x^2 + x) = 2x + 1
  EXPECT_EQ(x.grad().ToDoubles(), (std::vector<double>{2, -1, 5}));
  Tensor y = Leaf({1, 1});
  Sum(Add(y, y)).Backward();
  EXPECT_EQ(y.grad().ToDoubles(), (std::vector<double>{2, 2}));
}

// A custom identity that logs when its backward runs.
Tensor Logged(const Tensor& x, const std::string& name, std::vector<std::string>* log) {
  return CallFunction(
      name, {x}, [&] { return std::vector<Tensor>{Clone(x)}; },
      [name, log](BackwardContext&, std::vector<Tensor> g) {
        log->push_back(name);
        return g;
      })[0];
}

TEST(AutogradTest, DiamondsRunEachNodeOnceInDeterministicOrder) {
  Tensor x = Leaf({0.3, 0.7});
  std::vector<std::string> log;
  Tensor top = Logged(MulScalar(x, 2.0), "top", &log);
  Tensor left = Logged(Exp(top), "left", &log);
  Tensor right = Logged(Sin(top), "right", &log);
  Tensor z = Logged(Mul(left, right), "join", &log);
  Sum(z).Backward();
  // Latest-created first; `top` waits for both branches.
  EXPECT_EQ(log, (std::vector<std::string>{"join", "right", "left", "top"}));
  const std::vector<double> got = x.grad().ToDoubles();
  for (size_t i = 0; i < 2; ++i) {
    const double y = 2 * x.ToDoubles()[i];
    const double want = 2 * (std::exp(y) * std::sin(y) + std::exp(y) * std::cos(y));
    EXPECT_NEAR(got[i], want, 1e-12 * std::fabs(want));
  }
  // Creating the branches in the other order swaps them in the backward.
  Tensor x2 = Leaf(x.ToDoubles());
  std::vector<std::string> log2;
  Tensor top2 = Logged(MulScalar(x2, 2.0), "top", &log2);
  Tensor right2 = Logged(Sin(top2), "right", &log2);
  Tensor left2 = Logged(Exp(top2), "left", &log2);
  Sum(Logged(Mul(left2, right2), "join", &log2)).Backward();
  EXPECT_EQ(log2, (std::vector<std::string>{"join", "left", "right", "top"}));
  EXPECT_EQ(x2.grad().ToDoubles(), got);
}

TEST(AutogradTest, CustomFunctionWithHandWrittenBackward) {
  Tensor a = Leaf({1, 2, 3});
  Tensor b = Tensor::FromDoubles({10, 20, 30}, {3}, DType::kF64);  // no grad
  std::vector<bool> needs;
  std::vector<Tensor> out = CallFunction(
      "ScaledIdentity", {a, b}, [&] { return std::vector<Tensor>{Add(a, b)}; },
      [&needs](BackwardContext& ctx, std::vector<Tensor> g) -> std::vector<Tensor> {
        needs = {ctx.needs_input_grad(0), ctx.needs_input_grad(1)};
        return {MulScalar(g[0], 3.0), ctx.needs_input_grad(1) ? g[0] : Tensor()};
      });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ToDoubles(), (std::vector<double>{11, 22, 33}));
  ASSERT_NE(out[0].grad_fn(), nullptr);
  EXPECT_EQ(out[0].grad_fn()->name(), "ScaledIdentity");
  out[0].Backward(Tensor::FromDoubles({1, 0.5, -1}, {3}, DType::kF64));
  EXPECT_EQ(needs, (std::vector<bool>{true, false}));
  EXPECT_EQ(a.grad().ToDoubles(), (std::vector<double>{3, 1.5, -3}));
  EXPECT_FALSE(b.grad().defined());
  // With no input requiring grad nothing is recorded.
  std::vector<Tensor> plain = CallFunction(
      "ScaledIdentity", {b}, [&] { return std::vector<Tensor>{Clone(b)}; },
      [](BackwardContext&, std::vector<Tensor> g) { return g; });
  EXPECT_FALSE(plain[0].requires_grad());
}

TEST(AutogradTest, MultipleRootsAndOutputsWithoutGradient) {
  Tensor x = Leaf({1, 2});
  std::vector<Tensor> parts = Split(Mul(x, x), {1, 1}, 0);
  // Only the first part gets a gradient; the second's flows as zeros.
  Backward({parts[0]}, {Tensor::Ones({1}, DType::kF64)});
  EXPECT_EQ(x.grad().ToDoubles(), (std::vector<double>{2, 0}));
  Tensor y = Leaf({3});
  Backward({MulScalar(y, 2.0), MulScalar(y, 5.0)},
           {Tensor::Ones({1}, DType::kF64), Tensor::Full({1}, 2, DType::kF64)});
  EXPECT_EQ(y.grad().item(), 12);
}

TEST(AutogradDeathTest, UserErrorsDieWithClearMessages) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Tensor x = Leaf({1, 2, 3});
  EXPECT_DEATH(Exp(x).Backward(), "shape \\[3\\]; give its gradient explicitly");
  EXPECT_DEATH(Tensor::Ones({1}, DType::kF32).Backward(), "does not require grad");
  EXPECT_DEATH(Exp(x).Backward(Tensor::Ones({2}, DType::kF64)), "gradient \\[2\\] for root");
  EXPECT_DEATH(Exp(x).set_requires_grad(false), "non-leaf");
  EXPECT_DEATH(Tensor::Ones({1}, DType::kI64).set_requires_grad(true), "only floating");
  // A backward that returns a gradient of the wrong shape.
  EXPECT_DEATH(
      {
        Tensor y = CallFunction(
            "BadShape", {x}, [&] { return std::vector<Tensor>{Clone(x)}; },
            [](BackwardContext&, std::vector<Tensor>) -> std::vector<Tensor> {
              return {Tensor::Ones({2}, DType::kF64)};
            })[0];
        Sum(y).Backward();
      },
      "BadShape produced a gradient of shape \\[2\\] for input 0, which has shape \\[3\\]");
}

}  // namespace
}  // namespace loom::autograd
