// The nvcc builds of the fused kernels (RMSNorm, RoPE, SwiGLU, AdamW). Without
// a GPU (CI): bad arguments are rejected by the launchers before the device is
// touched, and valid launches fail with a Status naming the kernel instead of
// crashing. With a GPU: each launcher against its host reference, bf16.
#include <cuda_runtime_api.h>

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/adamw.h"
#include "kernels/cuda/adamw_reference.h"
#include "kernels/cuda/rmsnorm.h"
#include "kernels/cuda/rmsnorm_reference.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/rope_reference.h"
#include "kernels/cuda/swiglu.h"
#include "kernels/cuda/swiglu_reference.h"
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

template <typename T>
std::vector<T> Values(size_t n, double lo, double hi, uint64_t seed) {
  std::vector<T> v(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 7;
  for (T& e : v) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    e = FromDouble<T>(lo + (hi - lo) * double(x % 10007) / 10007.0);
  }
  return v;
}

// A device copy of a host vector, read back with Host().
template <typename T>
class Device {
 public:
  explicit Device(const std::vector<T>& host) : n_(host.size()) {
    EXPECT_EQ(cudaMalloc(&ptr_, n_ * sizeof(T) + 16), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~Device() { cudaFree(ptr_); }
  T* get() const { return static_cast<T*>(ptr_); }
  std::vector<T> Host() const {
    std::vector<T> h(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(h.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }

 private:
  void* ptr_ = nullptr;
  size_t n_;
};

template <typename T>
void ExpectClose(const std::vector<T>& got, const std::vector<T>& want, double atol, double rtol,
                 const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = ToDouble(got[i]), w = ToDouble(want[i]);
    ASSERT_TRUE(std::abs(g - w) <= atol + rtol * std::abs(w))
        << what << "[" << i << "] " << g << " vs " << w;
  }
}

TEST(FusedGpuTest, LaunchersValidateOnTheNvccBuildToo) {
  float buf[16];
  EXPECT_TRUE(absl::IsInvalidArgument(LaunchRmsNormForward({.dtype = DType::kI32,
                                                            .rows = 1,
                                                            .dim = 4,
                                                            .x = buf,
                                                            .x_stride = 4,
                                                            .weight = buf,
                                                            .y = buf,
                                                            .y_stride = 4,
                                                            .rstd = buf},
                                                           nullptr)));
  EXPECT_TRUE(absl::IsInvalidArgument(LaunchRope(
      {.dtype = DType::kF32, .batch = 1, .seqlen = 1, .heads = 1, .head_dim = 3}, nullptr)));
  EXPECT_TRUE(absl::IsInvalidArgument(
      LaunchSwiGluForward({.dtype = DType::kF32, .rows = 1, .cols = 4}, nullptr)));
  const AdamWTensor t{.numel = 4};
  EXPECT_TRUE(absl::IsInvalidArgument(LaunchAdamW({&t, 1}, {}, nullptr)));
}

TEST(FusedGpuTest, FailCleanlyWithoutAGpuOrMatchTheReferences) {
  constexpr int64_t kRows = 64, kDim = 1024;
  const std::vector<BFloat16> x = Values<BFloat16>(kRows * kDim, -2, 2, 1);
  const std::vector<BFloat16> w = Values<BFloat16>(kDim, 0.5, 1.5, 2);
  const std::vector<BFloat16> gy = Values<BFloat16>(kRows * kDim, -1, 1, 3);
  if (!HaveGpu()) {
    std::vector<BFloat16> y(x.size());
    std::vector<float> rstd(kRows);
    const absl::Status s = LaunchRmsNormForward({.dtype = DType::kBF16,
                                                 .rows = kRows,
                                                 .dim = kDim,
                                                 .x = x.data(),
                                                 .x_stride = kDim,
                                                 .weight = w.data(),
                                                 .eps = 1e-5,
                                                 .y = y.data(),
                                                 .y_stride = kDim,
                                                 .rstd = rstd.data()},
                                                nullptr);
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(std::string(s.message()), HasSubstr("launch of loom::cuda::"));
    EXPECT_THAT(std::string(s.message()), HasSubstr("RmsNormForwardKernel"));
    std::vector<BFloat16> out(x.size());
    const absl::Status sw = LaunchSwiGluForward({.dtype = DType::kBF16,
                                                 .rows = kRows,
                                                 .cols = kDim,
                                                 .gate = x.data(),
                                                 .gate_stride = kDim,
                                                 .up = gy.data(),
                                                 .up_stride = kDim,
                                                 .out = out.data(),
                                                 .out_stride = kDim},
                                                nullptr);
    EXPECT_THAT(std::string(sw.message()), HasSubstr("SwiGluForwardKernel"));
    return;
  }
  // RMSNorm forward and backward.
  std::vector<BFloat16> want_y(x.size()), want_gx(x.size()), want_gw(kDim);
  std::vector<float> want_rstd(kRows);
  reference::RmsNormForwardReference(x.data(), w.data(), kRows, kDim, 1e-5, want_y.data(),
                                     want_rstd.data());
  reference::RmsNormBackwardReference(gy.data(), x.data(), w.data(), want_rstd.data(), kRows, kDim,
                                      want_gx.data(), want_gw.data());
  Device<BFloat16> dx(x), dw(w), dgy(gy), dy(x), dgx(x), dgw(w);
  Device<float> drstd{std::vector<float>(kRows)};
  Device<unsigned char> ws(
      std::vector<unsigned char>(RmsNormBackwardWorkspaceBytes(DType::kBF16, kRows, kDim)));
  ASSERT_TRUE(LaunchRmsNormForward({.dtype = DType::kBF16,
                                    .rows = kRows,
                                    .dim = kDim,
                                    .x = dx.get(),
                                    .x_stride = kDim,
                                    .weight = dw.get(),
                                    .eps = 1e-5,
                                    .y = dy.get(),
                                    .y_stride = kDim,
                                    .rstd = drstd.get()},
                                   nullptr)
                  .ok());
  ExpectClose(dy.Host(), want_y, 1e-2, 1e-2, "rmsnorm y");
  ASSERT_TRUE(LaunchRmsNormBackward({.dtype = DType::kBF16,
                                     .rows = kRows,
                                     .dim = kDim,
                                     .gy = dgy.get(),
                                     .gy_stride = kDim,
                                     .x = dx.get(),
                                     .x_stride = kDim,
                                     .weight = dw.get(),
                                     .rstd = drstd.get(),
                                     .gx = dgx.get(),
                                     .gx_stride = kDim,
                                     .gw = dgw.get(),
                                     .workspace = ws.get()},
                                    nullptr)
                  .ok());
  ExpectClose(dgx.Host(), want_gx, 1e-2, 1e-2, "rmsnorm gx");
  ExpectClose(dgw.Host(), want_gw, 1e-2, 1e-2, "rmsnorm gw");

  // SwiGLU forward (the device expf may differ from the host's in the last bits).
  std::vector<BFloat16> want_h(x.size());
  reference::SwiGluForwardReference(x.data(), gy.data(), kRows * kDim, want_h.data());
  Device<BFloat16> dh(x);
  ASSERT_TRUE(LaunchSwiGluForward({.dtype = DType::kBF16,
                                   .rows = kRows,
                                   .cols = kDim,
                                   .gate = dx.get(),
                                   .gate_stride = kDim,
                                   .up = dgy.get(),
                                   .up_stride = kDim,
                                   .out = dh.get(),
                                   .out_stride = kDim},
                                  nullptr)
                  .ok());
  ExpectClose(dh.Host(), want_h, 1e-2, 1e-2, "swiglu out");

  // RoPE over [1, 64 tokens, 8 heads, 128].
  const std::vector<int64_t> pos = [] {
    std::vector<int64_t> p(64);
    for (int i = 0; i < 64; ++i) p[size_t(i)] = i * 37;
    return p;
  }();
  std::vector<float> freq(64);
  for (int i = 0; i < 64; ++i) freq[size_t(i)] = float(std::pow(500000.0, -2.0 * i / 128));
  std::vector<BFloat16> want_r(x.size());
  reference::RopeReference(x.data(), pos.data(), freq.data(), 1, 64, 8, 128, false, want_r.data());
  Device<int64_t> dpos(pos);
  Device<float> dfreq(freq);
  Device<BFloat16> dr(x);
  const RopeStrides st{64 * 8 * 128, 8 * 128, 128};
  ASSERT_TRUE(LaunchRope({.dtype = DType::kBF16,
                          .batch = 1,
                          .seqlen = 64,
                          .heads = 8,
                          .head_dim = 128,
                          .x = dx.get(),
                          .x_strides = st,
                          .out = dr.get(),
                          .out_strides = st,
                          .positions = dpos.get(),
                          .inv_freq = dfreq.get()},
                         nullptr)
                  .ok());
  ExpectClose(dr.Host(), want_r, 1e-2, 1e-2, "rope out");

  // AdamW: f32 params, bit-identical to the reference's formula.
  std::vector<float> p = Values<float>(5000, -1, 1, 4), g = Values<float>(5000, -0.1, 0.1, 5),
                     m(5000, 0.0f), v(5000, 0.0f);
  Device<float> dp(p), dg(g), dm(m), dv(v);
  const AdamWTensor t{.param = dp.get(),
                      .grad = dg.get(),
                      .exp_avg = dm.get(),
                      .exp_avg_sq = dv.get(),
                      .numel = 5000};
  ASSERT_TRUE(LaunchAdamW({&t, 1}, {.lr = 1e-3, .weight_decay = 0.1, .step = 1}, nullptr).ok());
  reference::AdamWReference(p.data(), g.data(), m.data(), v.data(), 5000, 1e-3, 0.9, 0.999, 1e-8,
                            0.1, 1);
  EXPECT_EQ(dp.Host(), p);
  EXPECT_EQ(dm.Host(), m);
  EXPECT_EQ(dv.Host(), v);
}

}  // namespace
}  // namespace loom::cuda
