// The cuDNN attention launchers. Without a GPU (CI): problems cuDNN cannot run
// and bad pointers are rejected before the device is touched, and valid ones
// fail with FailedPrecondition. With a GPU: forward and backward against the
// attention reference.
#include "kernels/cuda/attention_cudnn.h"

#include <cuda_runtime_api.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/attention_reference.h"
#include "runtime/half.h"

namespace loom::cuda {
namespace {

using ::testing::HasSubstr;

bool HaveGpu() {
  int count = 0;
  const bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  cudaGetLastError();
  return ok;
}

constexpr int64_t kB = 1, kT = 64, kS = 64, kH = 4, kG = 2, kE = 64;

AttentionProblem Dense(const void* q, const void* k, const void* v, void* out, void* lse) {
  return {.dtype = DType::kBF16,
          .batch = kB,
          .seqlen_q = kT,
          .seqlen_k = kS,
          .heads = kH,
          .kv_heads = kG,
          .head_dim = kE,
          .q = q,
          .k = k,
          .v = v,
          .q_strides = {kT * kH * kE, kH * kE, kE},
          .k_strides = {kS * kG * kE, kG * kE, kE},
          .v_strides = {kS * kG * kE, kG * kE, kE},
          .out = out,
          .out_strides = {kT * kH * kE, kH * kE, kE},
          .lse = lse,
          .causal = true};
}

TEST(AttentionCudnnTest, RejectsProblemsBeforeTouchingTheDevice) {
  std::vector<uint16_t> buf(kT * kH * kE);
  AttentionProblem p = Dense(buf.data(), buf.data(), buf.data(), buf.data(), buf.data());
  p.dtype = DType::kF32;
  absl::Status s = LaunchAttentionForwardCudnn(p, nullptr);
  EXPECT_TRUE(absl::IsUnimplemented(s)) << s;
  p = Dense(nullptr, buf.data(), buf.data(), buf.data(), buf.data());
  s = LaunchAttentionForwardCudnn(p, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("AttentionForward (cuDNN): q is null"));
  AttentionBackwardProblem b{.fwd =
                                 Dense(buf.data(), buf.data(), buf.data(), buf.data(), buf.data())};
  s = LaunchAttentionBackwardCudnn(b, nullptr);
  EXPECT_THAT(std::string(s.message()), HasSubstr("gout is null"));
}

std::vector<uint16_t> Bf16(const std::vector<double>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = BFloat16(float(v[i])).bits;
  return out;
}

std::vector<double> Doubles(const std::vector<uint16_t>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = float(BFloat16::FromBits(v[i]));
  return out;
}

std::vector<double> Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> d(-1, 1);
  std::vector<double> v(n);
  for (double& x : v) x = float(BFloat16(float(d(rng))));
  return v;
}

void* ToDevice(const std::vector<uint16_t>& v) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, v.size() * 2), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(p, v.data(), v.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  return p;
}

std::vector<uint16_t> FromDevice(const void* p, size_t n) {
  std::vector<uint16_t> v(n);
  EXPECT_EQ(cudaMemcpy(v.data(), p, n * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  return v;
}

TEST(AttentionCudnnTest, MatchesTheReferenceOnAGpuOrFailsCleanlyWithoutOne) {
  const std::vector<double> q = Random(kT * kH * kE, 1), k = Random(kS * kG * kE, 2),
                            v = Random(kS * kG * kE, 3), dout = Random(kT * kH * kE, 4);
  if (!HaveGpu()) {
    std::vector<uint16_t> buf(kT * kH * kE);
    const absl::Status s = LaunchAttentionForwardCudnn(
        Dense(buf.data(), buf.data(), buf.data(), buf.data(), buf.data()), nullptr);
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("cuDNN attention: no usable CUDA device"));
    return;
  }
  reference::AttentionShape shape{kB, kT, kS, kH, kG, kE, true, 1 / std::sqrt(double(kE)), {}};
  shape.seqs.push_back({0, 0, kT, 0, kS});
  std::vector<double> want_o, want_lse;
  reference::AttentionForward(shape, q, k, v, &want_o, &want_lse);
  void *dq = ToDevice(Bf16(q)), *dk = ToDevice(Bf16(k)), *dv = ToDevice(Bf16(v));
  void *dout_dev = ToDevice(Bf16(dout)), *dout_o = ToDevice(Bf16(q));
  void *gq = ToDevice(Bf16(q)), *gk = ToDevice(Bf16(k)), *gv = ToDevice(Bf16(v));
  void* lse = nullptr;
  ASSERT_EQ(cudaMalloc(&lse, want_lse.size() * 4), cudaSuccess);
  const AttentionProblem p = Dense(dq, dk, dv, dout_o, lse);
  absl::Status s = LaunchAttentionForwardCudnn(p, nullptr);
  ASSERT_TRUE(s.ok()) << s;
  const std::vector<double> o = Doubles(FromDevice(dout_o, want_o.size()));
  std::vector<float> got_lse(want_lse.size());
  ASSERT_EQ(cudaMemcpy(got_lse.data(), lse, got_lse.size() * 4, cudaMemcpyDeviceToHost),
            cudaSuccess);
  for (size_t i = 0; i < o.size(); ++i) ASSERT_NEAR(o[i], want_o[i], 2e-2) << i;
  for (size_t i = 0; i < got_lse.size(); ++i) ASSERT_NEAR(got_lse[i], want_lse[i], 1e-3) << i;

  s = LaunchAttentionBackwardCudnn({.fwd = p, .gout = dout_dev, .gq = gq, .gk = gk, .gv = gv},
                                   nullptr);
  ASSERT_TRUE(s.ok()) << s;
  const reference::AttentionGrads want = reference::AttentionBackward(shape, q, k, v, dout);
  const std::vector<double> got_q = Doubles(FromDevice(gq, q.size())),
                            got_k = Doubles(FromDevice(gk, k.size())),
                            got_v = Doubles(FromDevice(gv, v.size()));
  for (size_t i = 0; i < got_q.size(); ++i) ASSERT_NEAR(got_q[i], want.dq[i], 5e-2) << i;
  for (size_t i = 0; i < got_k.size(); ++i) ASSERT_NEAR(got_k[i], want.dk[i], 5e-2) << i;
  for (size_t i = 0; i < got_v.size(); ++i) ASSERT_NEAR(got_v[i], want.dv[i], 5e-2) << i;
  for (void* ptr : {dq, dk, dv, dout_dev, dout_o, gq, gk, gv, lse}) cudaFree(ptr);
}

}  // namespace
}  // namespace loom::cuda
