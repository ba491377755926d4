// The CUDA multi-tensor AdamW kernel under the emulator: bit for bit against
// the host reference (adamw_reference.h) and the CPU backend over several
// steps, for every param/grad dtype pair, tensors that span several chunks,
// misaligned tensors (the scalar path), empty tensors and more tensors than
// one launch's chunk table holds.
#include "kernels/cuda/adamw.h"

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/adamw_reference.h"
#include "kernels/cuda/testing/host_buffer.h"
#include "kernels/cuda/testing/schedules.h"
#include "runtime/tensor.h"

namespace loom::cuda_emu {
namespace {

using kernel_testing::HostBuffer;
using kernel_testing::kFloatDTypes;
using kernel_testing::Schedule;
using kernel_testing::Schedules;
using ::testing::HasSubstr;

// One parameter tensor and its optimizer state. An `offset` of elements in
// front of every buffer makes it misaligned for 16-byte accesses.
struct HostParam {
  HostBuffer param, grad, m, v;

  static HostParam Make(DType p, DType g, int64_t numel, int64_t offset, uint64_t seed) {
    const DType state = p == DType::kF64 ? DType::kF64 : DType::kF32;
    HostParam t{HostBuffer(p, numel, offset), HostBuffer(g, numel, offset),
                HostBuffer(state, numel, offset), HostBuffer(state, numel, offset)};
    t.param.FillRandom(seed, -1, 1);
    t.grad.FillRandom(seed + 1, -0.1, 0.1);
    t.m.FillRandom(seed + 2, -0.01, 0.01);
    t.v.FillRandom(seed + 3, 0, 1e-4);
    return t;
  }

  AdamWTensor View() {
    return {.param_dtype = param.dtype(),
            .grad_dtype = grad.dtype(),
            .param = param.data(),
            .grad = grad.data(),
            .exp_avg = m.data(),
            .exp_avg_sq = v.data(),
            .numel = param.count()};
  }

  // Applies the reference update to this tensor.
  void Reference(const AdamWStep& s) {
    DispatchFloating(param.dtype(), "param", [&](auto ptag) {
      DispatchFloating(grad.dtype(), "grad", [&](auto gtag) {
        using P = decltype(ptag);
        using G = decltype(gtag);
        using C = compute_t<P>;
        reference::AdamWReference(param.as<P>(), grad.as<G>(), m.as<C>(), v.as<C>(), param.count(),
                                  s.lr, s.beta1, s.beta2, s.eps, s.weight_decay, s.step);
      });
    });
  }
};

void ExpectSameBytes(const HostParam& got, const HostParam& want, size_t i) {
  EXPECT_TRUE(got.param.BitEqual(want.param)) << "tensor " << i << " param";
  EXPECT_TRUE(got.m.BitEqual(want.m)) << "tensor " << i << " exp_avg";
  EXPECT_TRUE(got.v.BitEqual(want.v)) << "tensor " << i << " exp_avg_sq";
  EXPECT_TRUE(got.param.PaddingIntact() && got.grad.PaddingIntact() && got.m.PaddingIntact() &&
              got.v.PaddingIntact())
      << "tensor " << i << ": a write outside the tensor";
}

// Runs `steps` optimizer steps on the emulated kernel and on the reference;
// every byte must agree after each step, and the padding stay untouched.
void CheckSteps(std::vector<HostParam> tensors, int steps) {
  for (const Schedule& schedule : Schedules(2)) {
    SCOPED_TRACE(schedule.Name());
    emu::ScopedOptions o(schedule.options);
    std::vector<HostParam> got = tensors, want = tensors;
    for (int step = 1; step <= steps; ++step) {
      const AdamWStep s{.lr = 1e-3 * step, .weight_decay = step == 2 ? 0.0 : 0.1, .step = step};
      std::vector<AdamWTensor> views;
      for (HostParam& t : got) views.push_back(t.View());
      const absl::Status st = LaunchAdamW(views, s, nullptr);
      ASSERT_TRUE(st.ok()) << st;
      for (HostParam& t : want) t.Reference(s);
      for (size_t i = 0; i < got.size(); ++i) ExpectSameBytes(got[i], want[i], i);
    }
  }
}

TEST(AdamWEmuTest, EveryDTypePairMatchesReferenceBitForBit) {
  std::vector<HostParam> tensors;
  uint64_t seed = 1;
  for (DType p : kFloatDTypes) {
    for (DType g : kFloatDTypes) tensors.push_back(HostParam::Make(p, g, 37, 0, seed += 10));
  }
  CheckSteps(std::move(tensors), 3);
}

TEST(AdamWEmuTest, ChunksTailsAlignmentAndEmptyTensors) {
  std::vector<HostParam> t;
  t.push_back(HostParam::Make(DType::kF32, DType::kF32, 1, 0, 1));
  t.push_back(HostParam::Make(DType::kBF16, DType::kF32, kAdamWChunk * 2 + 77, 0, 2));  // 3 chunks
  t.push_back(HostParam::Make(DType::kF32, DType::kF32, 0, 0, 3));
  t.push_back(HostParam::Make(DType::kF32, DType::kF32, 1003, 1, 4));  // misaligned: scalar path
  t.push_back(HostParam::Make(DType::kBF16, DType::kF32, 50, 3, 5));
  t.push_back(HostParam::Make(DType::kF32, DType::kF32, 4096, 0, 6));
  t.push_back(HostParam::Make(DType::kF16, DType::kBF16, kAdamWChunk + 1, 2, 7));
  CheckSteps(std::move(t), 2);
}

TEST(AdamWEmuTest, MoreTensorsThanOneChunkTable) {
  std::vector<HostParam> t;
  for (int i = 0; i < 2 * kAdamWTensorsPerLaunch + 7; ++i) {
    t.push_back(HostParam::Make(i % 3 ? DType::kF32 : DType::kBF16, DType::kF32, 1 + (i * 37) % 300,
                                0, uint64_t(i)));
  }
  CheckSteps(std::move(t), 1);
}

// Without weight decay the CPU backend and the kernel agree bit for bit. With
// it, g++ fuses the CPU's `p * decay` into the following add (the CPU build
// does not pass -ffp-contract=off), so f32 params may differ there by an ulp;
// the kernel rounds the product, as torch's separate mul_ does.
TEST(AdamWEmuTest, MatchesCpuBackend) {
  for (double wd : {0.0, 0.01}) {
    for (DType p : {DType::kF32, DType::kBF16}) {
      SCOPED_TRACE(absl::StrCat(DTypeName(p), " weight decay ", wd));
      const int64_t n = 3000;
      HostParam t = HostParam::Make(p, DType::kF32, n, 0, 42);
      const Tensor param = Tensor::Empty({n}, p), grad = Tensor::Empty({n}, DType::kF32),
                   m = Tensor::Empty({n}, DType::kF32), v = Tensor::Empty({n}, DType::kF32);
      const size_t param_bytes = size_t(n) * SizeOf(p), state_bytes = size_t(n) * sizeof(float);
      std::memcpy(param.raw_data(), t.param.data(), param_bytes);
      std::memcpy(grad.raw_data(), t.grad.data(), state_bytes);
      std::memcpy(m.raw_data(), t.m.data(), state_bytes);
      std::memcpy(v.raw_data(), t.v.data(), state_bytes);
      cpu::CpuBackend cpu;
      for (int64_t step = 1; step <= 3; ++step) {
        const HostBuffer before = t.param;
        cpu.AdamW({param}, {grad}, {m}, {v}, {.lr = 2e-3, .weight_decay = wd, .step = step});
        const AdamWTensor view = t.View();
        ASSERT_TRUE(
            LaunchAdamW({&view, 1}, {.lr = 2e-3, .weight_decay = wd, .step = step}, nullptr).ok());
        EXPECT_EQ(std::memcmp(m.raw_data(), t.m.data(), state_bytes), 0) << step;
        EXPECT_EQ(std::memcmp(v.raw_data(), t.v.data(), state_bytes), 0) << step;
        if (wd == 0.0 || p == DType::kBF16) {
          EXPECT_EQ(std::memcmp(param.raw_data(), t.param.data(), param_bytes), 0) << step;
        } else {
          const float* cpu_p = param.data<float>();
          const float* emu_p = t.param.as<float>();
          const float* old_p = before.as<float>();
          // Half an ulp of p * decay (rounded or not) plus half an ulp of the result.
          for (int64_t i = 0; i < n; ++i) {
            ASSERT_LE(std::abs(cpu_p[i] - emu_p[i]),
                      6e-8f * (std::abs(old_p[i]) + std::abs(cpu_p[i])))
                << i;
          }
        }
        // Both continue from the kernel's params, so differences do not compound.
        std::memcpy(param.raw_data(), t.param.data(), param_bytes);
      }
    }
  }
}

TEST(AdamWEmuTest, RejectsBadArguments) {
  float buf[8] = {};
  const AdamWTensor ok{.param = buf, .grad = buf, .exp_avg = buf, .exp_avg_sq = buf, .numel = 8};
  EXPECT_TRUE(LaunchAdamW({&ok, 1}, {}, nullptr).ok());
  auto message = [&](AdamWTensor t, AdamWStep s = {}) {
    const AdamWTensor ts[2] = {ok, t};
    return std::string(LaunchAdamW(ts, s, nullptr).message());
  };
  EXPECT_THAT(message(ok, {.step = 0}), HasSubstr("step must be >= 1"));
  AdamWTensor t = ok;
  t.grad = nullptr;
  EXPECT_THAT(message(t), HasSubstr("AdamW: tensor 1: grad is null"));
  t = ok;
  t.grad_dtype = DType::kI32;
  EXPECT_THAT(message(t), HasSubstr("tensor 1: param f32 and grad i32 must be floating"));
  t = ok;
  t.numel = -3;
  EXPECT_THAT(message(t), HasSubstr("numel -3 < 0"));
  t = ok;
  t.exp_avg = reinterpret_cast<char*>(buf) + 2;
  EXPECT_THAT(message(t), HasSubstr("not aligned"));
  t = {.numel = 0};  // empty: pointers may be null
  EXPECT_TRUE(LaunchAdamW({&t, 1}, {}, nullptr).ok());
}

}  // namespace
}  // namespace loom::cuda_emu
