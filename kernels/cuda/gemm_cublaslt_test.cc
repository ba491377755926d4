// Tests of the cuBLASLt GEMM that run without a GPU: the translation of
// row-major GemmProblems into column-major cuBLASLt plans, executed by a host
// model of cublasLtMatmul's documented semantics and compared with a
// row-major reference; argument validation; the error without a device. With
// a GPU the last test also runs cuBLASLt against the host reference.
#include "kernels/cuda/gemm_cublaslt.h"

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/half.h"

namespace loom::cuda {
namespace {

using ::testing::HasSubstr;

double Read(const void* base, cudaDataType_t t, int64_t i) {
  switch (t) {
    case CUDA_R_16BF:
      return float(static_cast<const BFloat16*>(base)[i]);
    case CUDA_R_16F:
      return float(static_cast<const Float16*>(base)[i]);
    case CUDA_R_64F:
      return static_cast<const double*>(base)[i];
    default:
      return static_cast<const float*>(base)[i];
  }
}

void Write(void* base, cudaDataType_t t, int64_t i, double v) {
  switch (t) {
    case CUDA_R_16BF:
      static_cast<BFloat16*>(base)[i] = BFloat16(float(v));
      break;
    case CUDA_R_16F:
      static_cast<Float16*>(base)[i] = Float16(float(v));
      break;
    case CUDA_R_64F:
      static_cast<double*>(base)[i] = v;
      break;
    default:
      static_cast<float*>(base)[i] = float(v);
  }
}

// cublasLtMatmul as documented: column-major D = alpha op(A) op(B) + beta C, C = D.
void RunPlanOnHost(const CublasLtPlan& p) {
  auto at = [](const CublasLtMatrix& m, int32_t b, cublasOperation_t op, int64_t r, int64_t c) {
    // Element (r, c) of op(M) for batch b; op T reads the stored matrix transposed.
    const int64_t i = op == CUBLAS_OP_N ? r + c * m.ld : c + r * m.ld;
    return Read(m.data, m.type, b * m.batch_stride + i);
  };
  for (int32_t b = 0; b < p.batch; ++b) {
    for (int64_t i = 0; i < p.m; ++i) {
      for (int64_t j = 0; j < p.n; ++j) {
        double acc = 0;
        for (int64_t kk = 0; kk < p.k; ++kk) {
          acc += at(p.a, b, p.trans_a, i, kk) * at(p.b, b, p.trans_b, kk, j);
        }
        const int64_t di = b * p.d.batch_stride + i + j * p.d.ld;
        void* d = const_cast<void*>(p.d.data);
        const double old = p.beta == 0 ? 0.0 : Read(d, p.d.type, di);
        Write(d, p.d.type, di, p.alpha * acc + p.beta * old);
      }
    }
  }
}

// The row-major semantics of GemmProblem (gemm.h).
void RowMajorReference(const GemmProblem& p, cudaDataType_t in, cudaDataType_t out) {
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t i = 0; i < p.m; ++i) {
      for (int64_t j = 0; j < p.n; ++j) {
        double acc = 0;
        for (int64_t kk = 0; kk < p.k; ++kk) {
          const int64_t ai = b * p.batch_stride_a + (p.trans_a ? kk * p.lda + i : i * p.lda + kk);
          const int64_t bi = b * p.batch_stride_b + (p.trans_b ? j * p.ldb + kk : kk * p.ldb + j);
          acc += Read(p.a, in, ai) * Read(p.b, in, bi);
        }
        const int64_t oi = b * p.batch_stride_out + i * p.ldo + j;
        const double old = p.beta == 0 ? 0.0 : Read(p.out, out, oi);
        Write(p.out, out, oi, p.alpha * acc + p.beta * old);
      }
    }
  }
}

struct Case {
  int64_t batch, m, n, k;
  bool trans_a, trans_b;
  int64_t pad;              // extra elements per row (ld = cols + pad)
  bool shared_a, shared_b;  // batch stride 0
  float beta;
};

std::vector<unsigned char> Buffer(size_t elems, size_t elem, uint64_t seed, cudaDataType_t t) {
  std::vector<unsigned char> buf(elems * elem);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < elems; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    Write(buf.data(), t, int64_t(i), double(int64_t(x % 17) - 8) / 8.0);  // exact in bf16
  }
  return buf;
}

void CheckPlan(const Case& c, DType in_dtype, DType out_dtype) {
  SCOPED_TRACE(absl::StrCat("batch ", c.batch, " m ", c.m, " n ", c.n, " k ", c.k, " trans ",
                            c.trans_a, c.trans_b, " pad ", c.pad, " shared ", c.shared_a,
                            c.shared_b, " beta ", c.beta, " ", DTypeName(in_dtype), "->",
                            DTypeName(out_dtype)));
  const cudaDataType_t in = in_dtype == DType::kBF16  ? CUDA_R_16BF
                            : in_dtype == DType::kF64 ? CUDA_R_64F
                                                      : CUDA_R_32F;
  const cudaDataType_t out = out_dtype == DType::kBF16  ? CUDA_R_16BF
                             : out_dtype == DType::kF64 ? CUDA_R_64F
                                                        : CUDA_R_32F;
  const size_t in_size = SizeOf(in_dtype), out_size = SizeOf(out_dtype);
  GemmProblem p{.input = in_dtype,
                .output = out_dtype,
                .batch = c.batch,
                .m = c.m,
                .n = c.n,
                .k = c.k,
                .trans_a = c.trans_a,
                .trans_b = c.trans_b,
                .alpha = 0.5f,
                .beta = c.beta};
  const int64_t a_rows = c.trans_a ? c.k : c.m, a_cols = c.trans_a ? c.m : c.k;
  const int64_t b_rows = c.trans_b ? c.n : c.k, b_cols = c.trans_b ? c.k : c.n;
  p.lda = a_cols + c.pad;
  p.ldb = b_cols + c.pad;
  p.ldo = c.n + c.pad;
  p.batch_stride_a = c.shared_a ? 0 : a_rows * p.lda;
  p.batch_stride_b = c.shared_b ? 0 : b_rows * p.ldb;
  p.batch_stride_out = c.m * p.ldo;
  const auto a = Buffer(size_t(a_rows * p.lda * (c.shared_a ? 1 : c.batch)), in_size, 1, in);
  const auto b = Buffer(size_t(b_rows * p.ldb * (c.shared_b ? 1 : c.batch)), in_size, 2, in);
  const auto out0 = Buffer(size_t(c.m * p.ldo * c.batch), out_size, 3, out);
  p.a = a.data();
  p.b = b.data();

  std::vector<unsigned char> want = out0, got = out0;
  p.out = want.data();
  RowMajorReference(p, in, out);
  p.out = got.data();
  const absl::StatusOr<CublasLtPlan> plan = PlanCublasLtGemm(p);
  ASSERT_TRUE(plan.ok()) << plan.status();
  RunPlanOnHost(*plan);
  const int64_t n_out = int64_t(out0.size() / out_size);
  for (int64_t i = 0; i < n_out; ++i) {
    ASSERT_EQ(Read(got.data(), out, i), Read(want.data(), out, i)) << "output element " << i;
  }
}

TEST(GemmCublasLtPlanTest, EveryTransposeBatchAndStrideMatchesTheRowMajorProduct) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      CheckPlan({1, 5, 7, 3, ta, tb, 0, false, false, 0.0f}, DType::kF32, DType::kF32);
      CheckPlan({3, 4, 6, 5, ta, tb, 2, false, false, 1.0f}, DType::kBF16, DType::kF32);
      CheckPlan({2, 3, 5, 4, ta, tb, 1, true, false, 0.5f}, DType::kBF16, DType::kBF16);
      CheckPlan({3, 6, 2, 3, ta, tb, 0, false, true, 1.0f}, DType::kF64, DType::kF64);
    }
  }
}

TEST(GemmCublasLtPlanTest, SharedWeightFoldsTheBatchIntoOneProduct) {
  // y = x @ W^T over a batch with W shared: one product of batch * M rows.
  const Case c{4, 3, 5, 6, false, true, 0, false, true, 0.0f};
  CheckPlan(c, DType::kBF16, DType::kF32);
  std::vector<float> a(4 * 3 * 6), b(5 * 6), out(4 * 3 * 5);
  const GemmProblem p{.input = DType::kF32,
                      .output = DType::kF32,
                      .batch = 4,
                      .m = 3,
                      .n = 5,
                      .k = 6,
                      .a = a.data(),
                      .lda = 6,
                      .batch_stride_a = 18,
                      .b = b.data(),
                      .ldb = 6,
                      .batch_stride_b = 0,
                      .trans_b = true,
                      .out = out.data(),
                      .ldo = 5,
                      .batch_stride_out = 15};
  const absl::StatusOr<CublasLtPlan> plan = PlanCublasLtGemm(p);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->batch, 1);
  EXPECT_EQ(plan->n, 12);  // batch * M
  EXPECT_EQ(plan->m, 5);
  EXPECT_EQ(plan->trans_a, CUBLAS_OP_T);
  EXPECT_EQ(plan->trans_b, CUBLAS_OP_N);
  EXPECT_EQ(plan->compute, CUBLAS_COMPUTE_32F);
}

TEST(GemmCublasLtPlanTest, RejectsBadProblems) {
  float buf[64];
  const GemmProblem ok{.input = DType::kBF16,
                       .output = DType::kF32,
                       .m = 2,
                       .n = 3,
                       .k = 4,
                       .a = buf,
                       .lda = 4,
                       .b = buf,
                       .ldb = 3,
                       .out = buf,
                       .ldo = 3};
  EXPECT_TRUE(PlanCublasLtGemm(ok).ok());
  auto message = [](const GemmProblem& p) {
    return std::string(PlanCublasLtGemm(p).status().message());
  };
  GemmProblem p = ok;
  p.input = DType::kI32;
  EXPECT_THAT(message(p), HasSubstr("input dtype i32 is not one of bf16, f16, f32, f64"));
  p = ok;
  p.output = DType::kF16;
  EXPECT_THAT(message(p), HasSubstr("output dtype f16 for bf16 inputs (expected bf16 or f32)"));
  p = ok;
  p.lda = 3;
  EXPECT_THAT(message(p), HasSubstr("lda = 3 is less than the 4 columns"));
  p = ok;
  p.b = nullptr;
  EXPECT_THAT(message(p), HasSubstr("LaunchGemmCublasLt: b is null"));
  p = ok;
  p.batch = 2;
  p.batch_stride_out = 4;
  EXPECT_THAT(message(p), HasSubstr("makes the output batches overlap"));
  p = ok;
  p.m = 0;
  EXPECT_TRUE(PlanCublasLtGemm(p)->empty);
}

bool HaveGpu() {
  int count = 0;
  const bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
  cudaGetLastError();
  return ok;
}

TEST(GemmCublasLtTest, RunsOnAGpuOrFailsCleanlyWithoutOne) {
  const int64_t m = 64, n = 48, k = 40;
  std::vector<BFloat16> a(m * k), b(n * k);
  for (size_t i = 0; i < a.size(); ++i) a[i] = BFloat16(float(int(i % 7) - 3) / 4);
  for (size_t i = 0; i < b.size(); ++i) b[i] = BFloat16(float(int(i % 5) - 2) / 4);
  GemmProblem p{.input = DType::kBF16,
                .output = DType::kF32,
                .m = m,
                .n = n,
                .k = k,
                .lda = k,
                .ldb = k,
                .trans_b = true,
                .ldo = n};
  if (!HaveGpu()) {
    std::vector<float> out(m * n);
    p.a = a.data();
    p.b = b.data();
    p.out = out.data();
    const absl::Status s = LaunchGemmCublasLt(p, nullptr);
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("LaunchGemmCublasLt: no usable CUDA device"));
    return;
  }
  void *da, *db, *dout;
  ASSERT_EQ(cudaMalloc(&da, a.size() * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&db, b.size() * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dout, m * n * 4), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(da, a.data(), a.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(db, b.data(), b.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  p.a = da;
  p.b = db;
  p.out = dout;
  const absl::Status s = LaunchGemmCublasLt(p, nullptr);
  ASSERT_TRUE(s.ok()) << s;
  std::vector<float> got(m * n), want(m * n);
  ASSERT_EQ(cudaMemcpy(got.data(), dout, got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  GemmProblem host = p;
  host.a = a.data();
  host.b = b.data();
  host.out = want.data();
  RowMajorReference(host, CUDA_R_16BF, CUDA_R_32F);
  for (int64_t i = 0; i < m * n; ++i) ASSERT_NEAR(got[i], want[i], 1e-4) << i;  // exact inputs
  cudaFree(da);
  cudaFree(db);
  cudaFree(dout);
}

}  // namespace
}  // namespace loom::cuda
