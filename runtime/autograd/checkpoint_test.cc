// Activation checkpointing: bit-identical gradients to the plain computation
// (random ops included), less memory held after the forward, nesting, and
// blocks whose outputs alias their inputs.
#include "runtime/autograd/checkpoint.h"

#include <vector>

#include "gtest/gtest.h"
#include "runtime/allocator.h"
#include "runtime/ops/ops.h"
#include "runtime/philox.h"
#include "runtime/random.h"

namespace loom::autograd {
namespace {

// Deterministic standard-normal f64 values.
Tensor Input(DimsRef shape, uint64_t seed) {
  std::vector<double> v(size_t(NumElements(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = philox::Normal(seed, i);
  return Tensor::FromDoubles(v, shape, DType::kF64);
}

// A block with a parameter `w`, a random factor and several intermediates.
// Reassigning `t` lets the intermediates die early when nothing saves them.
std::vector<Tensor> Block(const Tensor& w, const std::vector<Tensor>& in) {
  const Tensor& h = in[0];
  Tensor r = RandUniform(h.sizes(), 0.5, 1.5, h.dtype());
  Tensor t = Mul(h, w);
  t = Tanh(t);
  t = Exp(t);
  t = Mul(t, r);
  t = Sin(t);
  t = Mul(t, h);
  return {t, MulScalar(h, 3.0)};
}

struct Result {
  double loss;
  std::vector<double> x_grad, w_grad;
  uint64_t rng_offset_after;
};

// loss = sum(o0^2) + sum(o1 * x) with [o0, o1] = Block(cos(x)), the block
// optionally checkpointed.
Result Compute(bool checkpoint, DimsRef shape) {
  Tensor x = Input(shape, 1);
  Tensor w = Input(shape, 2);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  DefaultGenerator().SetOffset(1000);
  auto block = [w](const std::vector<Tensor>& in) { return Block(w, in); };
  Tensor h = Cos(x);
  std::vector<Tensor> out = checkpoint ? Checkpoint(block, {h}) : block({h});
  Tensor loss = Add(Sum(Mul(out[0], out[0])), Sum(Mul(out[1], x)));
  loss.Backward();
  return {loss.item(), x.grad().ToDoubles(), w.grad().ToDoubles(), DefaultGenerator().offset()};
}

TEST(CheckpointTest, GradientsAreBitIdenticalToThePlainComputation) {
  const Result plain = Compute(false, {7, 5});
  const Result ckpt = Compute(true, {7, 5});
  EXPECT_EQ(ckpt.loss, plain.loss);
  EXPECT_EQ(ckpt.x_grad, plain.x_grad);  // a leaf outside the block
  EXPECT_EQ(ckpt.w_grad, plain.w_grad);  // a leaf used only inside
  EXPECT_EQ(ckpt.rng_offset_after, plain.rng_offset_after);
  EXPECT_EQ(plain.rng_offset_after, 1000u + 35u);  // the recompute restored the offset
}

TEST(CheckpointTest, RecomputeRepeatsTheForwardRandomNumbers) {
  DefaultGenerator().SetOffset(0);
  Tensor x = Input({7, 5}, 1);
  x.set_requires_grad(true);
  auto noisy = [](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{Mul(in[0], RandUniform(in[0].sizes(), 0.5, 1.5, in[0].dtype()))};
  };
  Tensor loss = Sum(Checkpoint(noisy, {x})[0]);
  RandUniform({100}, 0, 1);  // the stream moves on before the backward
  loss.Backward();
  // d/dx sum(x * r) = r, the numbers of the forward (counters 0..34).
  Generator replay(DefaultGenerator().seed());
  EXPECT_EQ(x.grad().ToDoubles(),
            RandUniform({7, 5}, 0.5, 1.5, DType::kF64, Device::CPU(), &replay).ToDoubles());
  EXPECT_EQ(DefaultGenerator().offset(), 135u);
}

// Bytes held (current) and peak above the starting point during a forward.
struct ForwardMemory {
  int64_t held, peak;
};

ForwardMemory MeasureForward(bool checkpoint) {
  Tensor x = Input({256, 256}, 1);
  Tensor w = Input({256, 256}, 2);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  ResetPeakMemoryStats(Device::CPU());
  const int64_t base = GetMemoryStats(Device::CPU()).current_bytes;
  auto block = [w](const std::vector<Tensor>& in) { return Block(w, in); };
  std::vector<Tensor> out = checkpoint ? Checkpoint(block, {x}) : block({x});
  const MemoryStats s = GetMemoryStats(Device::CPU());
  ForwardMemory m{s.current_bytes - base, s.peak_bytes - base};
  // The graph still works afterwards.
  Add(Sum(out[0]), Sum(out[1])).Backward();
  EXPECT_TRUE(w.grad().defined());
  return m;
}

TEST(CheckpointTest, HoldsLessMemoryAfterTheForward) {
  constexpr int64_t kTensor = 256 * 256 * 8;
  const ForwardMemory plain = MeasureForward(false);
  const ForwardMemory ckpt = MeasureForward(true);
  // Plain keeps r and five intermediates besides the two outputs; the
  // checkpointed block keeps only its outputs.
  EXPECT_GE(plain.held, 8 * kTensor);
  EXPECT_EQ(ckpt.held, 2 * kTensor);
  EXPECT_LT(ckpt.peak, plain.peak);
  EXPECT_LE(ckpt.peak, 5 * kTensor);
}

TEST(CheckpointTest, NestedCheckpointsMatchThePlainComputation) {
  auto inner = [](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{Mul(Exp(in[0]), in[1])};
  };
  auto outer = [&](const std::vector<Tensor>& in) {
    Tensor a = Sin(in[0]);
    std::vector<Tensor> r = Checkpoint(inner, {a, in[0]});
    return std::vector<Tensor>{Mul(r[0], a)};
  };
  auto plain_outer = [&](const std::vector<Tensor>& in) {
    Tensor a = Sin(in[0]);
    return std::vector<Tensor>{Mul(inner({a, in[0]})[0], a)};
  };
  Tensor x1 = Input({4, 3}, 3);
  Tensor x2 = Input({4, 3}, 3);
  x1.set_requires_grad(true);
  x2.set_requires_grad(true);
  Sum(Checkpoint(outer, {x1})[0]).Backward();
  Sum(plain_outer({x2})[0]).Backward();
  EXPECT_EQ(x1.grad().ToDoubles(), x2.grad().ToDoubles());
}

TEST(CheckpointTest, IdentityBlockAndInputsWithoutGradient) {
  Tensor x = Input({3}, 4);
  x.set_requires_grad(true);
  Tensor scale = Tensor::Full({3}, 2.0, DType::kF64);  // needs no gradient
  std::vector<Tensor> out = Checkpoint(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{in[0], Mul(in[0], in[1])};
      },
      {x, scale});
  EXPECT_FALSE(out[0].is_same(x));
  EXPECT_TRUE(out[0].requires_grad());
  Add(Sum(out[0]), Sum(out[1])).Backward();
  EXPECT_EQ(x.grad().ToDoubles(), std::vector<double>(3, 3.0));
  EXPECT_FALSE(scale.grad().defined());
}

TEST(CheckpointTest, WithoutGradModeItJustRunsTheBlock) {
  Tensor x = Input({3}, 5);
  x.set_requires_grad(true);
  NoGradGuard no_grad;
  int calls = 0;
  std::vector<Tensor> out = Checkpoint(
      [&](const std::vector<Tensor>& in) {
        ++calls;
        return std::vector<Tensor>{Exp(in[0])};
      },
      {x});
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(out[0].requires_grad());
}

}  // namespace
}  // namespace loom::autograd
