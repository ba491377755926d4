// Op-harness cases for MatMul and Linear (see runtime/testing/op_harness.h),
// plus direct tests of Backend::Gemm: 16-bit floats against an f64
// reference, alpha/beta semantics, strided views and thread-count determinism.
#include <cmath>
#include <cstring>
#include <limits>

#include "gtest/gtest.h"
#include "runtime/backend.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"
#include "runtime/testing/op_harness.h"

namespace loom::testing {
namespace {

// Naive a @ b over doubles with NumPy batch broadcasting.
RefArray RefMatMul(const RefArray& a, const RefArray& b) {
  const int ra = int(a.sizes.size()), rb = int(b.sizes.size());
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  const Dims a_batch(a.sizes.begin(), a.sizes.end() - 2),
      b_batch(b.sizes.begin(), b.sizes.end() - 2);
  const Dims batch = BroadcastShapes(a_batch, b_batch);
  Dims out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  RefArray out(out_shape);
  const int nd = int(batch.size());
  const int64_t nb = NumElements(batch);
  for (int64_t bi = 0; bi < nb; ++bi) {
    // Flat matrix index of batch bi in a and in b (size-1 dims broadcast).
    int64_t rem = bi, ia = 0, ib = 0, sa = 1, sb = 1;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t idx = rem % batch[d];
      rem /= batch[d];
      const int da = d - (nd - (ra - 2)), db = d - (nd - (rb - 2));
      if (da >= 0) {
        if (a_batch[da] != 1) ia += idx * sa;
        sa *= a_batch[da];
      }
      if (db >= 0) {
        if (b_batch[db] != 1) ib += idx * sb;
        sb *= b_batch[db];
      }
    }
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) s += a.v[(ia * m + i) * k + p] * b.v[(ib * k + p) * n + j];
        out.v[(bi * m + i) * n + j] = s;
      }
    }
  }
  return out;
}

// The transpose of the last two dims.
RefArray RefTranspose(const RefArray& x) {
  Dims sizes = x.sizes;
  const int nd = int(sizes.size());
  std::swap(sizes[nd - 1], sizes[nd - 2]);
  RefArray out(sizes);
  const int64_t r = x.size(-2), c = x.size(-1), nb = x.numel() / std::max<int64_t>(1, r * c);
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) out.v[(b * c + j) * r + i] = x.v[(b * r + i) * c + j];
  return out;
}

// x [..., in] @ w[out, in]^T (+ bias).
RefArray RefLinear(const RefArray& x, const RefArray& w, const RefArray* bias) {
  const int64_t in = w.size(1), outf = w.size(0), rows = x.numel() / in;
  Dims sizes = x.sizes;
  sizes.back() = outf;
  RefArray out(sizes);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < outf; ++o) {
      double s = bias ? bias->v[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += x.v[r * in + i] * w.v[o * in + i];
      out.v[r * outf + o] = s;
    }
  }
  return out;
}

// a @ b where `a_t` / `b_t` say the input is stored transposed (last two dims)
// and is passed to MatMul as a Transpose view.
OpCase MatMulCase(std::string name, Dims a, Dims b, bool a_t = false, bool b_t = false) {
  return {.name = "matmul/" + name,
          .make_inputs =
              [a, b](DType dt) {
                return Inputs{RandomNormal(a, dt, 11), RandomNormal(b, dt, 12)};
              },
          .grad_inputs = {0, 1},
          .op =
              [a_t, b_t](const Inputs& in) {
                return Outputs{MatMul(a_t ? Transpose(in[0], -1, -2) : in[0],
                                      b_t ? Transpose(in[1], -1, -2) : in[1])};
              },
          .reference =
              [a_t, b_t](const RefInputs& in) {
                return RefOutputs{RefMatMul(a_t ? RefTranspose(in[0]) : in[0],
                                            b_t ? RefTranspose(in[1]) : in[1])};
              }};
}

OpCase LinearCase(std::string name, Dims x, int64_t out_features, bool bias) {
  const int64_t in = x.back();
  return {.name = "linear/" + name,
          .make_inputs =
              [x, in, out_features, bias](DType dt) {
                Inputs v{RandomNormal(x, dt, 21), RandomNormal({out_features, in}, dt, 22)};
                if (bias) v.push_back(RandomNormal({out_features}, dt, 23));
                return v;
              },
          .grad_inputs = bias ? std::vector<int>{0, 1, 2} : std::vector<int>{0, 1},
          .op =
              [bias](const Inputs& in) {
                return Outputs{Linear(in[0], in[1], bias ? in[2] : Tensor())};
              },
          .reference =
              [bias](const RefInputs& in) {
                return RefOutputs{RefLinear(in[0], in[1], bias ? &in[2] : nullptr)};
              }};
}

LOOM_REGISTER_OP_CASES(MatMulCases) {
  std::vector<OpCase> cases = {
      MatMulCase("2d", {4, 6}, {6, 5}),
      MatMulCase("odd_7x5_5x3", {7, 5}, {5, 3}),
      MatMulCase("k1", {4, 1}, {1, 3}),
      MatMulCase("m1_n1", {1, 6}, {6, 1}),
      MatMulCase("batched", {3, 4, 5}, {3, 5, 2}),
      // b shared by every batch: folded into one GEMM over all rows.
      MatMulCase("3d_at_2d", {3, 4, 5}, {5, 2}),
      MatMulCase("4d_at_2d", {2, 3, 4, 5}, {5, 3}),
      // a shared by every batch.
      MatMulCase("2d_at_3d", {3, 4}, {2, 4, 5}),
      // Batch dims broadcast both ways: [2, 1] with [3] -> [2, 3].
      MatMulCase("broadcast_batch", {2, 1, 3, 4}, {3, 4, 5}),
      MatMulCase("broadcast_batch_size1", {1, 3, 4}, {2, 4, 2}),
      // Transposed views pass as BLAS trans flags.
      MatMulCase("transposed_a", {6, 4}, {6, 5}, true, false),
      MatMulCase("transposed_b", {4, 6}, {5, 6}, false, true),
      MatMulCase("transposed_both_batched", {2, 5, 4}, {2, 3, 5}, true, true),
      MatMulCase("transposed_b_shared", {2, 3, 4}, {5, 4}, false, true),
      MatMulCase("empty_k", {3, 0}, {0, 4}),
  };
  // A permuted operand whose batch stride is not outermost (no single row stride).
  cases.push_back(
      {.name = "matmul/permuted_batch",
       .make_inputs =
           [](DType dt) {
             return Inputs{RandomNormal({4, 2, 5}, dt, 13), RandomNormal({5, 3}, dt, 14)};
           },
       .grad_inputs = {0, 1},
       .op =
           [](const Inputs& in) {
             return Outputs{MatMul(Permute(in[0], {1, 0, 2}), in[1])};
           },
       .reference =
           [](const RefInputs& in) {
             RefArray a({2, 4, 5});
             for (int64_t i = 0; i < 4; ++i)
               for (int64_t b = 0; b < 2; ++b)
                 for (int64_t k = 0; k < 5; ++k) a.at({b, i, k}) = in[0].at({i, b, k});
             return RefOutputs{RefMatMul(a, in[1])};
           }});
  // A column slice: row stride larger than the row length.
  cases.push_back(
      {.name = "matmul/sliced_columns",
       .make_inputs =
           [](DType dt) {
             return Inputs{RandomNormal({3, 9}, dt, 15), RandomNormal({4, 2}, dt, 16)};
           },
       .grad_inputs = {0, 1},
       .op = [](const Inputs& in) { return Outputs{MatMul(Slice(in[0], 1, 2, 6), in[1])}; },
       .reference =
           [](const RefInputs& in) {
             RefArray a({3, 4});
             for (int64_t i = 0; i < 3; ++i)
               for (int64_t k = 0; k < 4; ++k) a.at({i, k}) = in[0].at({i, k + 2});
             return RefOutputs{RefMatMul(a, in[1])};
           }});
  cases.push_back(LinearCase("no_bias", {5, 4}, 3, false));
  cases.push_back(LinearCase("bias", {5, 4}, 3, true));
  cases.push_back(LinearCase("3d_bias", {2, 3, 4}, 6, true));
  cases.push_back(LinearCase("3d_no_bias_in1", {2, 3, 1}, 4, false));
  // x given as a transposed view: its rows have stride 1.
  cases.push_back(
      {.name = "linear/transposed_x",
       .make_inputs =
           [](DType dt) {
             return Inputs{RandomNormal({4, 5}, dt, 24), RandomNormal({3, 4}, dt, 25),
                           RandomNormal({3}, dt, 26)};
           },
       .grad_inputs = {0, 1, 2},
       .op = [](const Inputs& in) { return Outputs{Linear(Transpose(in[0], 0, 1), in[1], in[2])}; },
       .reference =
           [](const RefInputs& in) {
             return RefOutputs{RefLinear(RefTranspose(in[0]), in[1], &in[2])};
           }});
  return cases;
}

// ---- Direct Backend::Gemm tests.

Backend& Cpu() { return GetBackend(Device::CPU()); }

// out = alpha * op(a) @ op(b) + beta * out0 in f64 for 3-d a, b, out0 values.
std::vector<double> RefGemm(const Tensor& a, bool ta, const Tensor& b, bool tb, double alpha,
                            double beta, const Tensor& out0) {
  const RefArray ra = RefArray::Of(a), rb = RefArray::Of(b), ro = RefArray::Of(out0);
  const int64_t batch = out0.size(0), m = out0.size(1), n = out0.size(2);
  const int64_t k = ta ? a.size(1) : a.size(2);
  std::vector<double> out(size_t(batch * m * n));
  for (int64_t bi = 0; bi < batch; ++bi) {
    const int64_t ia = a.size(0) == 1 ? 0 : bi, ib = b.size(0) == 1 ? 0 : bi;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) {
          const double x = ta ? ra.at({ia, p, i}) : ra.at({ia, i, p});
          const double y = tb ? rb.at({ib, j, p}) : rb.at({ib, p, j});
          s += x * y;
        }
        const double prev = beta == 0 ? 0.0 : beta * ro.at({bi, i, j});
        out[size_t((bi * m + i) * n + j)] = alpha * s + prev;
      }
    }
  }
  return out;
}

// Every element within rel * |ref| + abs of the reference.
void ExpectClose(const std::vector<double>& got, const std::vector<double>& ref, double rel,
                 double abs, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::abs(got[i] - ref[i]) <= rel * std::abs(ref[i]) + abs) && ++bad <= 5) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", expected " << ref[i];
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

// 16-bit floats accumulate in f32 and round once: every element is within one
// 16-bit rounding of the exact product of the (rounded) inputs. Accumulating
// in the 16-bit type over K = 300 would be off by many units in the last place.
void CheckHalfGemm(DType dt, double rel) {
  struct Shape {
    int64_t ba, bb, batch, m, n, k;
    bool ta, tb;
  };
  const Shape shapes[] = {
      {2, 1, 2, 33, 19, 300, false, true},
      {1, 3, 3, 17, 40, 300, true, false},
      {1, 1, 1, 160, 150, 120, false, false},  // big enough to be tiled
      // Enough matrices that K is cut into several f32 panels (kMaxPanelElements).
      {2048, 2048, 2048, 4, 4, 600, false, false},
  };
  for (const Shape& s : shapes) {
    const Tensor a = RandomNormal(s.ta ? Dims{s.ba, s.k, s.m} : Dims{s.ba, s.m, s.k}, dt, 31);
    const Tensor b = RandomNormal(s.tb ? Dims{s.bb, s.n, s.k} : Dims{s.bb, s.k, s.n}, dt, 32);
    const Tensor out0 = RandomNormal({s.batch, s.m, s.n}, dt, 33);
    const Tensor out = Clone(out0);
    Cpu().Gemm(a, s.ta, b, s.tb, 0.5, 0.25, out);
    const std::vector<double> ref = RefGemm(a, s.ta, b, s.tb, 0.5, 0.25, out0);
    ExpectClose(out.ToDoubles(), ref, rel, 1e-4,
                absl::StrFormat("%s gemm m=%d n=%d k=%d batch=%d", std::string(DTypeName(dt)), s.m,
                                s.n, s.k, s.batch));
  }
}

TEST(Gemm, BFloat16AccumulatesInF32) { CheckHalfGemm(DType::kBF16, std::ldexp(1.0, -8)); }
TEST(Gemm, Float16AccumulatesInF32) { CheckHalfGemm(DType::kF16, std::ldexp(1.0, -10)); }

TEST(Gemm, AlphaBetaAccumulate) {
  for (DType dt : {DType::kF32, DType::kF64, DType::kBF16}) {
    const double tol = dt == DType::kF64 ? 1e-12 : dt == DType::kF32 ? 1e-5 : 1e-2;
    const Tensor a = RandomNormal({2, 5, 7}, dt, 41), b = RandomNormal({2, 7, 6}, dt, 42);
    const Tensor out0 = RandomNormal({2, 5, 6}, dt, 43);
    for (const auto& [alpha, beta] :
         std::vector<std::pair<double, double>>{{1.0, 1.0}, {2.0, -0.5}, {-1.5, 0.0}, {0.0, 3.0}}) {
      const Tensor out = Clone(out0);
      Cpu().Gemm(a, false, b, false, alpha, beta, out);
      ExpectClose(out.ToDoubles(), RefGemm(a, false, b, false, alpha, beta, out0), tol, tol,
                  absl::StrFormat("%s alpha=%g beta=%g", std::string(DTypeName(dt)), alpha, beta));
    }
  }
}

// beta = 0 ignores out's old values, even NaN (BLAS semantics); K = 0 scales out by beta.
TEST(Gemm, BetaZeroIgnoresNanAndEmptyK) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    const Tensor a = RandomNormal({1, 4, 3}, dt, 44), b = RandomNormal({1, 3, 5}, dt, 45);
    const Tensor out = Tensor::Full({1, 4, 5}, nan, dt);
    Cpu().Gemm(a, false, b, false, 1.0, 0.0, out);
    ExpectClose(out.ToDoubles(), RefGemm(a, false, b, false, 1.0, 0.0, out), 1e-2, 1e-5,
                std::string(DTypeName(dt)) + " beta=0 over NaN");

    const Tensor ea = Tensor::Empty({1, 4, 0}, dt), eb = Tensor::Empty({1, 0, 5}, dt);
    const Tensor nan_out = Tensor::Full({1, 4, 5}, nan, dt);
    Cpu().Gemm(ea, false, eb, false, 1.0, 0.0, nan_out);
    ExpectClose(nan_out.ToDoubles(), std::vector<double>(20, 0.0), 0, 0, "K=0 beta=0");
    const Tensor twos = Tensor::Full({1, 4, 5}, 2.0, dt);
    Cpu().Gemm(ea, false, eb, false, 1.0, 1.5, twos);
    ExpectClose(twos.ToDoubles(), std::vector<double>(20, 3.0), 0, 0, "K=0 beta=1.5");
  }
}

// Operands and out as strided views inside bigger buffers; elements of out's
// buffer outside the view stay untouched.
TEST(Gemm, StridedViews) {
  for (DType dt : {DType::kF32, DType::kBF16}) {
    const Tensor a_buf = RandomNormal({3, 6, 11}, dt, 46);
    const Tensor a = Slice(a_buf, 2, 1, 8);  // [3, 6, 7], row stride 11
    const Tensor b_buf = RandomNormal({7, 9}, dt, 47);
    const Tensor b = Reshape(Slice(b_buf, 1, 0, 4), {1, 7, 4});  // [1, 7, 4], row stride 9
    const Tensor out_buf = RandomNormal({3, 6, 10}, dt, 48);
    const std::vector<double> before = out_buf.ToDoubles();
    const Tensor out = Slice(out_buf, 2, 3, 7);  // [3, 6, 4], row stride 10
    const std::vector<double> ref = RefGemm(a, false, b, false, 1.0, 1.0, out);
    Cpu().Gemm(a, false, b, false, 1.0, 1.0, out);
    ExpectClose(out.ToDoubles(), ref, dt == DType::kF32 ? 1e-5 : 1e-2, 1e-5, "strided out");
    const std::vector<double> after = out_buf.ToDoubles();
    for (size_t i = 0; i < after.size(); ++i) {
      const int64_t col = int64_t(i) % 10;
      if (col < 3 || col >= 7) {
        EXPECT_EQ(after[i], before[i]) << "outside the view at " << i;
      }
    }
  }
}

// Results are bit-identical for 1 and 2 threads: the tiling depends only on shapes.
TEST(Gemm, DeterministicAcrossThreadCounts) {
  const int saved = NumThreads();
  struct Shape {
    int64_t batch, m, n, k;
    bool tb;
  };
  const Shape shapes[] = {
      {1, 300, 200, 260, false}, {1, 70, 500, 130, true}, {64, 24, 20, 32, false}};
  for (DType dt : {DType::kF32, DType::kBF16}) {
    for (const Shape& s : shapes) {
      const Tensor a = RandomNormal({s.batch, s.m, s.k}, dt, 51);
      const Tensor b = RandomNormal(s.tb ? Dims{1, s.n, s.k} : Dims{1, s.k, s.n}, dt, 52);
      std::vector<std::vector<uint8_t>> bytes;
      for (int threads : {1, 2}) {
        SetNumThreads(threads);
        const Tensor out = Tensor::Empty({s.batch, s.m, s.n}, dt);
        Cpu().Gemm(a, false, b, s.tb, 1.0, 0.0, out);
        const auto* p = static_cast<const uint8_t*>(out.raw_data());
        bytes.emplace_back(p, p + out.nbytes());
        if (threads == 2) {
          const Tensor zeros = Tensor::Zeros({s.batch, s.m, s.n}, dt);
          ExpectClose(out.ToDoubles(), RefGemm(a, false, b, s.tb, 1.0, 0.0, zeros),
                      dt == DType::kF32 ? 1e-5 : 1e-2, 1e-4, "determinism shape");
        }
      }
      EXPECT_TRUE(bytes[0] == bytes[1])
          << DTypeName(dt) << " m=" << s.m << " n=" << s.n << " k=" << s.k << " batch=" << s.batch
          << " differs between 1 and 2 threads";
    }
  }
  SetNumThreads(saved);
}

TEST(GemmDeathTest, RejectsIntegerAndVectors) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const Tensor ai = Tensor::Zeros({1, 2, 3}, DType::kI32),
               bi = Tensor::Zeros({1, 3, 2}, DType::kI32);
  EXPECT_DEATH(Cpu().Gemm(ai, false, bi, false, 1.0, 0.0, Tensor::Zeros({1, 2, 2}, DType::kI32)),
               "integer matrix products are not supported");
  EXPECT_DEATH(MatMul(Tensor::Zeros({3}, DType::kF32), Tensor::Zeros({3, 2}, DType::kF32)),
               "1-d operands are not supported");
  EXPECT_DEATH(MatMul(Tensor::Zeros({2, 3}, DType::kF32), Tensor::Zeros({4, 2}, DType::kF32)),
               "inner dims differ");
}

// Linear's bias-as-beta path on 3-d bf16 input matches MatMul + Add in f64.
TEST(Linear, Bf16MatchesF64Reference) {
  const Tensor x = RandomNormal({2, 9, 64}, DType::kBF16, 61);
  const Tensor w = RandomNormal({24, 64}, DType::kBF16, 62);
  const Tensor bias = RandomNormal({24}, DType::kBF16, 63);
  const Tensor y = Linear(x, w, bias);
  const RefArray rb = RefArray::Of(bias);
  const RefArray ref = RefLinear(RefArray::Of(x), RefArray::Of(w), &rb);
  ExpectClose(y.ToDoubles(), ref.v, std::ldexp(1.0, -8), 1e-6, "bf16 linear");
}

}  // namespace
}  // namespace loom::testing
