// The CUDA backend against the CPU backend, end to end through the ops and
// autograd: every op-harness case (runtime/ops/*_cases.cc) runs once on CPU
// tensors and once on emulated CUDA tensors (kernels/cuda/emulated_device.h),
// in f32, bf16 and f64; outputs and the gradients of sum_j <out_j, w_j> must
// agree, and everything computed from CUDA inputs must live on the CUDA
// device. Then a tiny Llama on both devices: forward, loss, every parameter
// gradient, and one clipped AdamW step.
//
// Tolerances (relative error ||cuda - cpu|| / ||cpu|| over a whole tensor):
//   f64 1e-11  (only summation orders differ; largest seen 6e-14)
//   f32 1e-5   (f32 accumulation on both sides in different orders; largest
//               seen 1.7e-6, a Llama norm-weight gradient)
//   bf16 1e-2  (each side rounds intermediates to bf16 at its own points and
//               gradients pass through several roundings; largest seen 2.4e-3)
// Schedules: f32 cases run under the thread-random policy, bf16 under
// warp-serial, f64 under thread-random with another seed (the kernel tests
// cover policies and seeds in depth; here they vary across the suite).
//
// The same source builds backend_parity_gpu_test against the real backend
// (:cuda_backend, nvcc kernels): on a machine with a GPU it runs the same
// comparisons there; without one it checks that CUDA tensors fail cleanly.
#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/llama.h"
#include "runtime/backend.h"
#include "runtime/ops/ops.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/clip_grad.h"
#include "runtime/testing/op_harness.h"

#if defined(LOOM_CUDA_EMULATION)
#include "kernels/cuda/emulated_device.h"
#include "kernels/emu/emulator.h"
#else
#include "runtime/cuda/device.h"
#endif

namespace loom {
namespace {

#if defined(LOOM_CUDA_EMULATION)
bool CudaUsable() { return cuda_emu::EmulatedDeviceRegistered(); }
#else
bool CudaUsable() { return cuda::IsAvailable(); }
#endif

using testing::AllOpCases;
using testing::Inputs;
using testing::OpCase;
using testing::Outputs;
using testing::RelativeError;

constexpr Device kCuda = Device::CUDA(0);

double Tolerance(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return 1e-11;
    case DType::kBF16:
      return 1e-2;
    default:
      return 1e-5;
  }
}

// The emulator's schedule for a dtype's runs (nothing to set on a GPU).
class Schedule {
 public:
  explicit Schedule(DType dtype)
#if defined(LOOM_CUDA_EMULATION)
      : options_(dtype == DType::kBF16 ? emu::Options{.policy = emu::Policy::kWarpSerial, .seed = 2}
                 : dtype == DType::kF64
                     ? emu::Options{.policy = emu::Policy::kThreadRandom, .seed = 3}
                     : emu::Options{.policy = emu::Policy::kThreadRandom, .seed = 1})
#endif
  {
  }

 private:
#if defined(LOOM_CUDA_EMULATION)
  emu::ScopedOptions options_;
#endif
};

Tensor ToDevice(const Tensor& t, Device device) {
  absl::StatusOr<Tensor> d = t.CopyTo(device);
  LOOM_CHECK_OK(d.status());
  return *d;
}

struct ParityCase {
  OpCase c;
  DType dtype;
};

void PrintTo(const ParityCase& p, std::ostream* os) {
  *os << p.c.name << " in " << DTypeName(p.dtype);
}

class BackendParityTest : public ::testing::TestWithParam<ParityCase> {};

// Cases whose op returns a host value by design (SumOfSquares returns a
// double, which the case wraps in a CPU scalar); their kernels still ran on CUDA.
bool ReturnsHostValues(const std::string& name) {
  return name == "reduce/sum_of_squares_large_strided";
}

// Compares one tensor computed on CUDA with its CPU twin.
void ExpectMatches(const Tensor& cuda, const Tensor& cpu, double tol, const std::string& what,
                   bool on_host = false) {
  ASSERT_TRUE(cuda.defined()) << what << " is undefined on CUDA";
  EXPECT_EQ(cuda.device(), on_host ? Device::CPU() : kCuda)
      << what << (on_host ? " is not a host value" : " was not computed on the CUDA device");
  ASSERT_EQ(cuda.sizes(), cpu.sizes()) << what;
  EXPECT_EQ(cuda.dtype(), cpu.dtype()) << what;
  const std::vector<double> got = cuda.ToDoubles(), want = cpu.ToDoubles();
  // NaN where the CPU has NaN is agreement; a NaN elsewhere is not (RelativeError is inf).
  std::vector<double> g, w;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i]) && std::isnan(got[i])) continue;
    if (std::isinf(want[i]) && got[i] == want[i]) continue;
    g.push_back(got[i]);
    w.push_back(want[i]);
  }
  EXPECT_LE(RelativeError(g, w), tol) << what;
}

TEST_P(BackendParityTest, CudaMatchesCpu) {
  const OpCase& c = GetParam().c;
  const DType dtype = GetParam().dtype;
  const Schedule schedule(dtype);
  Inputs cpu_in = c.make_inputs(dtype), cuda_in;
  for (const Tensor& t : cpu_in) cuda_in.push_back(t.defined() ? ToDevice(t, kCuda) : t);
  for (int i : c.grad_inputs) {
    cpu_in[i].set_requires_grad(true);
    cuda_in[i].set_requires_grad(true);
  }
  const Outputs cpu_out = c.op(cpu_in);
  const Outputs cuda_out = c.op(cuda_in);
  ASSERT_EQ(cuda_out.size(), cpu_out.size());
  const double tol = Tolerance(dtype);
  std::vector<Tensor> cpu_roots, cuda_roots, cpu_w, cuda_w;
  for (size_t j = 0; j < cpu_out.size(); ++j) {
    ExpectMatches(cuda_out[j], cpu_out[j], tol, "output " + std::to_string(j),
                  ReturnsHostValues(c.name));
    if (c.grad_inputs.empty() || !cpu_out[j].requires_grad()) continue;
    ASSERT_TRUE(cuda_out[j].requires_grad()) << "output " << j << " lost its autograd history";
    cpu_roots.push_back(cpu_out[j]);
    cuda_roots.push_back(cuda_out[j]);
    cpu_w.push_back(testing::RandomNormal(cpu_out[j].sizes(), cpu_out[j].dtype(), 1000 + j));
    cuda_w.push_back(ToDevice(cpu_w.back(), kCuda));
  }
  if (cpu_roots.empty()) return;
  autograd::Backward(cpu_roots, cpu_w);
  autograd::Backward(cuda_roots, cuda_w);
  for (int i : c.grad_inputs) {
    ExpectMatches(cuda_in[i].grad(), cpu_in[i].grad(), tol,
                  "gradient of input " + std::to_string(i));
  }
}

std::vector<ParityCase> AllParityCases() {
  std::vector<ParityCase> all;
  if (!CudaUsable()) return all;  // see CudaDeviceTest below
  for (const OpCase& c : AllOpCases()) {
    for (DType dtype : {DType::kF32, DType::kBF16, DType::kF64}) all.push_back({c, dtype});
  }
  return all;
}

std::string ParityName(const ::testing::TestParamInfo<ParityCase>& info) {
  std::string n = info.param.c.name + "_" + std::string(DTypeName(info.param.dtype));
  for (char& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(AllOps, BackendParityTest, ::testing::ValuesIn(AllParityCases()),
                         ParityName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(BackendParityTest);

// What a build against the real backend checks on a machine without a GPU:
// the backend is registered, and CUDA tensors fail with the reason instead
// of running anything. (The emulated build always has its device.)
TEST(CudaDeviceTest, UsableOrFailsCleanly) {
  EXPECT_TRUE(HasBackend(DeviceType::kCUDA));
  absl::StatusOr<Tensor> t = Tensor::TryEmpty({4}, DType::kF32, kCuda);
  if (CudaUsable()) {
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->device(), kCuda);
  } else {
    ASSERT_FALSE(t.ok());
    EXPECT_THAT(std::string(t.status().message()), ::testing::HasSubstr("cuda:0 is not usable"));
  }
}

// ---- A tiny Llama on both devices.

LlamaConfig TinyLlama(bool tied) {
  LlamaConfig c;
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.rms_norm_eps = 1e-5;
  c.initializer_range = 0.3;
  c.tie_word_embeddings = tied;
  return c;
}

class LlamaParityTest : public ::testing::TestWithParam<std::pair<DType, bool>> {};

TEST_P(LlamaParityTest, ForwardAndBackwardMatchTheCpu) {
  const auto [dtype, tied] = GetParam();
  const Schedule schedule(dtype);
  LlamaForCausalLM cpu(TinyLlama(tied), dtype, Device::CPU());
  LlamaForCausalLM cuda(TinyLlama(tied), dtype, kCuda);
  cpu.InitWeights(17);
  cuda.InitWeights(17);
  // Same initial weights on both devices (the fills are the same Philox numbers).
  const NamedTensors cpu_params = cpu.NamedParameters(), cuda_params = cuda.NamedParameters();
  ASSERT_EQ(cpu_params.size(), cuda_params.size());
  for (size_t i = 0; i < cpu_params.size(); ++i) {
    EXPECT_EQ(cuda_params[i].second.device(), kCuda) << cuda_params[i].first;
    EXPECT_EQ(cuda_params[i].second.ToDoubles(), cpu_params[i].second.ToDoubles())
        << cuda_params[i].first;
  }
  // Two rows; the second packs two sequences (positions restart at 0).
  const Tensor ids = Tensor::FromVector<int64_t>({1, 5, 9, 2, 7, 3, 0, 39, 4, 4, 8, 12}, {2, 6});
  const Tensor targets =
      Tensor::FromVector<int64_t>({5, 9, -100, 7, 3, 11, 39, 4, 4, -100, 12, 1}, {2, 6});
  const Tensor positions =
      Tensor::FromVector<int64_t>({0, 1, 2, 3, 4, 5, 0, 1, 2, 0, 1, 2}, {2, 6});
  const Tensor cpu_logits = cpu.Forward(ids, {.position_ids = positions});
  const Tensor cuda_logits =
      cuda.Forward(ToDevice(ids, kCuda), {.position_ids = ToDevice(positions, kCuda)});
  const double tol = Tolerance(dtype);
  ExpectMatches(cuda_logits, cpu_logits, tol, "logits");
  // Default positions (0..T-1 per row), made by the model on the ids' device.
  ExpectMatches(cuda.Forward(ToDevice(ids, kCuda)), cpu.Forward(ids), tol,
                "default-position logits");
  const Tensor cpu_loss = CrossEntropy(cpu_logits, targets);
  const Tensor cuda_loss = CrossEntropy(cuda_logits, ToDevice(targets, kCuda));
  ExpectMatches(cuda_loss, cpu_loss, tol, "loss");
  cpu_loss.Backward();
  cuda_loss.Backward();
  for (size_t i = 0; i < cpu_params.size(); ++i) {
    ExpectMatches(cuda_params[i].second.grad(), cpu_params[i].second.grad(), tol,
                  "gradient of " + cpu_params[i].first);
  }
  // One optimizer step on each device (gradient clipping, then the fused AdamW).
  std::vector<Tensor> cpu_p, cuda_p;
  for (size_t i = 0; i < cpu_params.size(); ++i) {
    cpu_p.push_back(cpu_params[i].second);
    cuda_p.push_back(cuda_params[i].second);
  }
  // eps well above the gradients' rounding noise: Adam's first step is ~lr * sign(g), so with a
  // tiny eps a vanishing gradient that rounds to different signs on the two devices would move
  // its weight in opposite directions; this compares the kernels, not that instability.
  const AdamWConfig config{.lr = 1e-2, .eps = 1e-3, .weight_decay = 0.1};
  AdamW cpu_opt(cpu_p, config), cuda_opt(cuda_p, config);
  const double cpu_norm = ClipGradNorm(cpu_p, 0.5), cuda_norm = ClipGradNorm(cuda_p, 0.5);
  EXPECT_NEAR(cuda_norm, cpu_norm, tol * cpu_norm);
  cpu_opt.Step();
  cuda_opt.Step();
  for (size_t i = 0; i < cpu_params.size(); ++i) {
    ExpectMatches(cuda_p[i], cpu_p[i], tol, "updated " + cpu_params[i].first);
  }
}

std::vector<std::pair<DType, bool>> LlamaVariants() {
  if (!CudaUsable()) return {};
  return {{DType::kF32, false}, {DType::kF32, true}, {DType::kBF16, false}, {DType::kF64, false}};
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LlamaParityTest);
INSTANTIATE_TEST_SUITE_P(DTypes, LlamaParityTest, ::testing::ValuesIn(LlamaVariants()),
                         [](const ::testing::TestParamInfo<std::pair<DType, bool>>& info) {
                           return std::string(DTypeName(info.param.first)) +
                                  (info.param.second ? "_tied" : "_untied");
                         });

}  // namespace
}  // namespace loom
