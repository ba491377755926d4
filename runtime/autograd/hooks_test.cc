#include "runtime/autograd/hooks.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/ops/ops.h"

namespace loom::autograd {
namespace {

Tensor Leaf(std::vector<double> v) {
  Tensor t = Tensor::FromDoubles(v, {int64_t(v.size())}, DType::kF64);
  t.set_requires_grad(true);
  return t;
}

// Two "blocks" y = 2 * x, z = y * y with hooks around block 2; the log shows
// when each hook ran relative to the gradient flow.
TEST(HooksTest, PreAndPostBackwardHooksRunOnceAroundTheBlock) {
  std::vector<std::string> log;
  Tensor x = Leaf({1, 2, 3});
  x.AddPostAccumulateGradHook([&](const Tensor&) { log.push_back("x.grad"); });
  Tensor y = MulScalar(x, 2.0);
  std::vector<Tensor> in = OnGradientsComputed({y}, [&] { log.push_back("post"); });
  Tensor a = Mul(in[0], in[0]);
  Tensor b = Mul(in[0], a);  // two outputs of the block, both on the gradient path
  std::vector<Tensor> out = OnGradientsArriving({a, b}, [&] { log.push_back("pre"); });
  Tensor loss = Sum(Add(out[0], out[1]));
  loss.Backward();
  EXPECT_EQ(log, (std::vector<std::string>{"pre", "post", "x.grad"}));
  // Values are untouched: d/dx (4x^2 + 8x^3) = 8x + 24x^2.
  EXPECT_EQ(x.grad().ToDoubles(), (std::vector<double>{32, 112, 240}));
}

TEST(HooksTest, TensorsThatNeedNoGradientPassThrough) {
  int calls = 0;
  Tensor c = Tensor::FromDoubles({5}, {1}, DType::kF64);
  Tensor x = Leaf({1});
  std::vector<Tensor> out = OnGradientsArriving({c, x}, [&] { ++calls; });
  EXPECT_TRUE(out[0].is_same(c));
  Sum(Mul(out[0], out[1])).Backward();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(x.grad().item(), 5);
}

}  // namespace
}  // namespace loom::autograd
