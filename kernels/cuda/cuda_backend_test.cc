// Backend methods of the emulated CudaBackend that no op-harness case reaches,
// called directly and compared with the CPU backend: the multi-tensor AdamW
// (mixed param/grad dtypes, a non-contiguous parameter updated through a
// copy), random fills, and the layouts the backend copies before launching.
#include "kernels/cuda/cuda_backend.h"

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/emulated_device.h"
#include "runtime/backend.h"
#include "runtime/ops/ops.h"
#include "runtime/testing/op_harness.h"

namespace loom::cuda_emu {
namespace {

constexpr Device kCuda = Device::CUDA(0);

Tensor OnCuda(const Tensor& t) {
  absl::StatusOr<Tensor> d = t.CopyTo(kCuda);
  LOOM_CHECK_OK(d.status());
  return *d;
}

// The same strided view of a copy of t's storage on CUDA.
Tensor SameViewOnCuda(const Tensor& view, const Tensor& base) {
  const Tensor cuda_base = OnCuda(base);
  return Tensor::FromStorage(cuda_base.storage(), view.offset(), view.sizes(), view.strides(),
                             view.dtype());
}

void ExpectClose(const Tensor& cuda, const Tensor& cpu, double tol, const std::string& what) {
  ASSERT_EQ(cuda.device(), kCuda) << what;
  const std::vector<double> got = cuda.ToDoubles(), want = cpu.ToDoubles();
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << what << " element " << i;
  }
}

TEST(CudaBackendTest, AdamWMatchesTheCpuBackendForEveryDtypeAndLayout) {
  struct Case {
    DType param, grad;
    double tol;  // f32 state: a few ulp; 16-bit params: one ulp of the param
  };
  const Case cases[] = {{DType::kF32, DType::kF32, 1e-6},
                        {DType::kBF16, DType::kF32, 8e-3},
                        {DType::kBF16, DType::kBF16, 8e-3},
                        {DType::kF16, DType::kF32, 1e-3},
                        {DType::kF64, DType::kF64, 1e-13}};
  std::vector<Tensor> cpu_p, cpu_g, cpu_m, cpu_v, cuda_p, cuda_g, cuda_m, cuda_v;
  std::vector<double> tols;
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    const DType state = c.param == DType::kF64 ? DType::kF64 : DType::kF32;
    cpu_p.push_back(testing::RandomNormal({37, 3}, c.param, 10 + i));
    cpu_g.push_back(testing::RandomNormal({37, 3}, c.grad, 20 + i));
    cpu_m.push_back(Tensor::Zeros({37, 3}, state));
    cpu_v.push_back(Tensor::Zeros({37, 3}, state));
    tols.push_back(c.tol);
  }
  // A transposed parameter and state (views of [5, 7] buffers): updated through contiguous
  // copies that are written back.
  const Tensor base_p = testing::RandomNormal({5, 7}, DType::kF32, 30);
  const Tensor base_m = Tensor::Zeros({5, 7}, DType::kF32),
               base_v = Tensor::Zeros({5, 7}, DType::kF32);
  cpu_p.push_back(Transpose(base_p, 0, 1));
  cpu_g.push_back(testing::RandomNormal({7, 5}, DType::kF32, 31));
  cpu_m.push_back(Transpose(base_m, 0, 1));
  cpu_v.push_back(Transpose(base_v, 0, 1));
  tols.push_back(1e-6);
  for (size_t i = 0; i < cpu_p.size(); ++i) {
    const bool strided = i + 1 == cpu_p.size();
    cuda_p.push_back(strided ? SameViewOnCuda(cpu_p[i], base_p) : OnCuda(cpu_p[i]));
    cuda_g.push_back(OnCuda(cpu_g[i]));
    cuda_m.push_back(strided ? SameViewOnCuda(cpu_m[i], base_m) : OnCuda(cpu_m[i]));
    cuda_v.push_back(strided ? SameViewOnCuda(cpu_v[i], base_v) : OnCuda(cpu_v[i]));
  }
  ASSERT_FALSE(cuda_p.back().is_contiguous());
  for (int64_t step = 1; step <= 3; ++step) {
    const AdamWParams p{.lr = 1e-2, .weight_decay = 0.1, .step = step};
    GetBackend(Device::CPU()).AdamW(cpu_p, cpu_g, cpu_m, cpu_v, p);
    GetBackend(kCuda).AdamW(cuda_p, cuda_g, cuda_m, cuda_v, p);
  }
  for (size_t i = 0; i < cpu_p.size(); ++i) {
    const std::string what = "tensor " + std::to_string(i);
    ExpectClose(cuda_p[i], cpu_p[i], tols[i], what + " param");
    ExpectClose(cuda_m[i], cpu_m[i], 1e-6, what + " exp_avg");
    ExpectClose(cuda_v[i], cpu_v[i], 1e-6, what + " exp_avg_sq");
  }
}

TEST(CudaBackendTest, RandomFillsAreTheCpusNumbers) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF64}) {
    Tensor cpu = Tensor::Empty({1001}, dtype), cuda = Tensor::Empty({1001}, dtype, kCuda);
    GetBackend(Device::CPU()).RandomNormal(cpu, 7, 100, 0.5, 2.0);
    GetBackend(kCuda).RandomNormal(cuda, 7, 100, 0.5, 2.0);
    // Emulated, both use the host's libm: the same bits.
    EXPECT_EQ(cuda.ToDoubles(), cpu.ToDoubles()) << DTypeName(dtype);
    GetBackend(Device::CPU()).RandomUniform(cpu, 8, 0, -1.0, 3.0);
    GetBackend(kCuda).RandomUniform(cuda, 8, 0, -1.0, 3.0);
    EXPECT_EQ(cuda.ToDoubles(), cpu.ToDoubles()) << DTypeName(dtype);
  }
}

TEST(CudaBackendTest, GemmCopiesOperandsWithOverlappingRows) {
  // b's rows overlap (row stride 0: every row is the same vector), which a GEMM
  // launcher cannot take: the backend multiplies a contiguous copy.
  const Tensor a = testing::RandomNormal({1, 4, 3}, DType::kF32, 40);
  const Tensor row = testing::RandomNormal({1, 1, 5}, DType::kF32, 41);
  const Tensor b = Expand(row, {1, 3, 5});
  ASSERT_EQ(b.stride(1), 0);
  Tensor cpu_out = Tensor::Empty({1, 4, 5}, DType::kF32);
  GetBackend(Device::CPU()).Gemm(a, false, b, false, 1.0, 0.0, cpu_out);
  const Tensor cuda_b = Expand(OnCuda(row), {1, 3, 5});
  Tensor cuda_out = Tensor::Empty({1, 4, 5}, DType::kF32, kCuda);
  GetBackend(kCuda).Gemm(OnCuda(a), false, cuda_b, false, 1.0, 0.0, cuda_out);
  ExpectClose(cuda_out, cpu_out, 1e-6, "a @ b");
}

}  // namespace
}  // namespace loom::cuda_emu
