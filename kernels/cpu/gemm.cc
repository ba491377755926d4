// CPU batched GEMM on OpenBLAS: out[b] = alpha * op(a[b]) @ op(b[b]) + beta * out[b].
//
// Threading. OpenBLAS's own threads are not deterministic across thread
// counts (OpenBLAS 0.3.21: ~11% of shapes tried differ in the last bit between
// 1 and 2 threads), and they would spin on the same cores as our pool. So
// OpenBLAS always runs single-threaded here and we parallelize with
// ParallelFor over work items: (batch, tile) pairs, where each matrix is cut
// into tiles along its larger output dim. The tiling depends only on the
// shapes, never on the thread count, so every output element is computed by
// the same BLAS call whatever the number of threads: results are bit-identical.
// Many small matrices become one item each (parallel over the batch); a big
// single matrix becomes up to kTargetItems tiles. On 2 cores this reaches
// ~95% of multi-threaded raw sgemm for n >= 512 (gemm_benchmark); the price is
// re-packing one operand per tile and scaling capped at kTargetItems threads.
//
// bf16/f16 ("bf16 with fp32 accumulation"): operands are converted to f32
// in K-panels, accumulated by sgemm into an f32 copy of out, and rounded to
// the 16-bit type once at the end.
#include <cblas.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "runtime/parallel.h"

namespace loom::cpu {
namespace {

// Items a big GEMM is cut into: enough to keep 2-8 threads busy while each
// tile stays wide enough (>= kMinTileDim) that re-packing the other operand
// per tile costs little.
constexpr int64_t kTargetItems = 8;
constexpr int64_t kMinTileDim = 128;
constexpr int64_t kTileAlign = 32;
// Below this many multiply-adds per matrix a GEMM is a single item.
constexpr int64_t kMinTileWork = int64_t{1} << 21;
// Below this many multiply-adds in total everything runs on the calling thread.
constexpr int64_t kMinParallelWork = int64_t{1} << 16;
// f32 elements of converted operand panels held at once (16-bit path).
constexpr int64_t kMaxPanelElements = int64_t{1} << 23;
constexpr int64_t kPanelAlign = 64;

// One stored operand as BLAS sees it: `batches` matrices of rows x cols
// (row-major, leading dim ld) batch_stride apart.
template <typename T>
struct Matrix {
  T* data = nullptr;
  int64_t batches = 1, batch_stride = 0, rows = 0, cols = 0, ld = 1;
  T* batch(int64_t b) const { return data + (batches == 1 ? 0 : b * batch_stride); }
};

// The leading dim BLAS accepts for a stored [rows, cols] view with row stride
// `row_stride`, or -1 when the layout needs a copy (overlapping rows).
int64_t LeadingDim(int64_t rows, int64_t cols, int64_t row_stride) {
  if (rows <= 1) return std::max<int64_t>(cols, 1);
  return row_stride >= std::max<int64_t>(cols, 1) ? row_stride : -1;
}

template <typename T>
Matrix<T> MatrixOf(const Tensor& t) {
  Matrix<T> m;
  m.data = static_cast<T*>(t.raw_data());
  m.batches = t.size(0);
  m.batch_stride = t.stride(0);
  m.rows = t.size(1);
  m.cols = t.size(2);
  m.ld = LeadingDim(m.rows, m.cols, t.stride(1));
  return m;
}

// How one matrix product is cut into tiles along M (split_m) or N.
struct TilePlan {
  bool split_m = true;
  int64_t tile = 1;   // rows (or columns) per tile
  int64_t tiles = 1;  // per matrix
};

TilePlan PlanTiles(int64_t batch, int64_t m, int64_t n, int64_t k) {
  TilePlan p;
  // Splitting M makes every tile re-pack all of op(b), splitting N all of
  // op(a): cut the larger output dim so the re-packed operand is the smaller.
  p.split_m = m >= n;
  const int64_t dim = p.split_m ? m : n;
  p.tile = std::max<int64_t>(dim, 1);
  if (m * n * k < kMinTileWork) return p;
  const int64_t want = std::min((kTargetItems + batch - 1) / batch, dim / kMinTileDim);
  if (want <= 1) return p;
  p.tile = (dim + want - 1) / want;
  p.tile = (p.tile + kTileAlign - 1) / kTileAlign * kTileAlign;
  p.tiles = (dim + p.tile - 1) / p.tile;
  return p;
}

void BlasGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m),
              int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}
void BlasGemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
              int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(m),
              int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

void UseSingleThreadedBlas() {
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

// c[b] = alpha * op(a[b]) @ op(b[b]) + beta * c[b] for b < batch, tiled and
// parallel (see the file comment). k > 0.
template <typename T>
void TiledGemm(int64_t batch, int64_t m, int64_t n, int64_t k, const Matrix<const T>& a, bool ta,
               const Matrix<const T>& b, bool tb, T alpha, T beta, const Matrix<T>& c) {
  const TilePlan plan = PlanTiles(batch, m, n, k);
  const int64_t items = batch * plan.tiles;
  const int64_t grain = batch * m * n * k < kMinParallelWork ? items : 1;
  ParallelFor(items, grain, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t bi = item / plan.tiles;
      const int64_t lo = (item % plan.tiles) * plan.tile;
      const T* pa = a.batch(bi);
      const T* pb = b.batch(bi);
      T* pc = c.batch(bi);
      int64_t tm = m, tn = n;
      if (plan.split_m) {
        tm = std::min(plan.tile, m - lo);
        pa += ta ? lo : lo * a.ld;  // rows lo.. of op(a)
        pc += lo * c.ld;
      } else {
        tn = std::min(plan.tile, n - lo);
        pb += tb ? lo * b.ld : lo;  // columns lo.. of op(b)
        pc += lo;
      }
      BlasGemm(ta, tb, tm, tn, k, alpha, pa, a.ld, pb, b.ld, beta, pc, c.ld);
    }
  });
}

Tensor ContiguousCopy(Backend& backend, const Tensor& t) {
  Tensor c = Tensor::Empty(t.sizes(), t.dtype(), t.device());
  backend.Copy(t, c);
  return c;
}

template <typename T>
void BlasPath(Backend& backend, const Tensor& a, bool ta, const Tensor& b, bool tb, int64_t k,
              double alpha, double beta, const Tensor& out) {
  // Operands whose rows overlap (row stride < cols, e.g. expanded rows) are copied first.
  const Tensor a_ok = MatrixOf<const T>(a).ld < 0 ? ContiguousCopy(backend, a) : a;
  const Tensor b_ok = MatrixOf<const T>(b).ld < 0 ? ContiguousCopy(backend, b) : b;
  const Matrix<const T> ma = MatrixOf<const T>(a_ok), mb = MatrixOf<const T>(b_ok);
  const Matrix<T> mc = MatrixOf<T>(out);
  TiledGemm<T>(out.size(0), out.size(1), out.size(2), k, ma, ta, mb, tb, T(alpha), T(beta), mc);
}

// dst [batches, rows, cols] (contiguous f32) = block [row0, row0+rows) x
// [col0, col0+cols) of every matrix of the strided 3-d tensor `src`.
template <typename T>
void ConvertBlock(const Tensor& src, int64_t row0, int64_t rows, int64_t col0, int64_t cols,
                  float* dst) {
  const T* base = static_cast<const T*>(src.raw_data());
  const int64_t batches = src.size(0), bs = src.stride(0), rs = src.stride(1);
  ParallelFor(batches * rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t r = begin; r < end; ++r) {
                  const T* s = base + (r / rows) * bs + (row0 + r % rows) * rs + col0;
                  float* d = dst + r * cols;
                  for (int64_t j = 0; j < cols; ++j) d[j] = Load(s[j]);
                }
              });
}

// f32 accumulation for 16-bit floats: out = round(alpha * op(a) @ op(b) + beta * out),
// rounded once at the end.
template <typename T>
void HalfPath(const Tensor& a, bool ta, const Tensor& b, bool tb, int64_t k, double alpha,
              double beta, const Tensor& out) {
  const int64_t batch = out.size(0), m = out.size(1), n = out.size(2);
  const int64_t ba = a.size(0), bb = b.size(0);
  // Not zero-initialized: the first panel's sgemm runs with beta 0 when beta is 0.
  std::unique_ptr<float[]> acc(new float[size_t(batch * m * n)]);
  T* const out_data = out.data<T>();
  const int64_t obs = out.stride(0), ors = out.stride(1);
  if (beta != 0) {
    ParallelFor(batch * m, std::max<int64_t>(1, 16384 / n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const T* s = out_data + (r / m) * obs + (r % m) * ors;
        for (int64_t j = 0; j < n; ++j) acc[r * n + j] = Load(s[j]);
      }
    });
  }
  // Panel width along K: fixed by the shapes (not the thread count).
  const int64_t per_k = ba * m + bb * n;
  int64_t kc =
      std::max<int64_t>(kPanelAlign, kMaxPanelElements / per_k / kPanelAlign * kPanelAlign);
  kc = std::min(kc, k);
  std::vector<float> pa(size_t(ba * m * kc)), pb(size_t(bb * n * kc));
  const Matrix<float> mc{acc.get(), batch, m * n, m, n, n};
  for (int64_t k0 = 0; k0 < k; k0 += kc) {
    const int64_t kw = std::min(kc, k - k0);
    // op(a) panel: columns k0.. of stored [M, K], or rows k0.. of stored [K, M].
    if (ta) {
      ConvertBlock<T>(a, k0, kw, 0, m, pa.data());
    } else {
      ConvertBlock<T>(a, 0, m, k0, kw, pa.data());
    }
    if (tb) {
      ConvertBlock<T>(b, 0, n, k0, kw, pb.data());
    } else {
      ConvertBlock<T>(b, k0, kw, 0, n, pb.data());
    }
    const Matrix<const float> ma{pa.data(), ba, m * kw, ta ? kw : m, ta ? m : kw, ta ? m : kw};
    const Matrix<const float> mb{pb.data(), bb, n * kw, tb ? n : kw, tb ? kw : n, tb ? kw : n};
    const float step_beta = k0 == 0 ? float(beta) : 1.0f;
    TiledGemm<float>(batch, m, n, kw, ma, ta, mb, tb, float(alpha), step_beta, mc);
  }
  ParallelFor(batch * m, std::max<int64_t>(1, 16384 / n), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      T* d = out_data + (r / m) * obs + (r % m) * ors;
      for (int64_t j = 0; j < n; ++j) d[j] = Store<T>(acc[r * n + j]);
    }
  });
}

void CheckOperand(const char* name, const Tensor& t, const Tensor& out) {
  LOOM_CHECK(t.dim() == 3, "Gemm: %s must be 3-d [batch, rows, cols], got %s", name,
             t.ShapeString());
  LOOM_CHECK(t.dtype() == out.dtype(), "Gemm: %s is %s but out is %s", name,
             std::string(DTypeName(t.dtype())), std::string(DTypeName(out.dtype())));
  LOOM_CHECK(t.size(0) == 1 || t.size(0) == out.size(0),
             "Gemm: %s %s has batch %d; expected 1 or out's batch %d", name, t.ShapeString(),
             t.size(0), out.size(0));
  LOOM_CHECK(t.size(2) <= 1 || t.stride(2) == 1,
             "Gemm: %s %s needs stride 1 on its last dim, has %d", name, t.ShapeString(),
             t.stride(2));
  LOOM_CHECK(t.size(1) < INT_MAX && t.size(2) < INT_MAX, "Gemm: %s %s exceeds BLAS int dims", name,
             t.ShapeString());
}

}  // namespace

void CpuBackend::Gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
                      double beta, const Tensor& out) {
  const DType dt = out.dtype();
  LOOM_CHECK(IsFloating(dt),
             "Gemm: expected f32, f64, bf16 or f16 tensors, got %s (integer matrix products are "
             "not supported)",
             std::string(DTypeName(dt)));
  LOOM_CHECK(out.dim() == 3, "Gemm: out must be 3-d [batch, M, N], got %s", out.ShapeString());
  CheckOperand("a", a, out);
  CheckOperand("b", b, out);
  const int64_t batch = out.size(0), m = out.size(1), n = out.size(2);
  const int64_t am = trans_a ? a.size(2) : a.size(1), k = trans_a ? a.size(1) : a.size(2);
  const int64_t bk = trans_b ? b.size(2) : b.size(1), bn = trans_b ? b.size(1) : b.size(2);
  LOOM_CHECK(am == m && bk == k && bn == n, "Gemm: a %s%s @ b %s%s does not give out %s",
             a.ShapeString(), trans_a ? "^T" : "", b.ShapeString(), trans_b ? "^T" : "",
             out.ShapeString());
  LOOM_CHECK(out.size(2) <= 1 || out.stride(2) == 1, "Gemm: out %s needs stride 1 on its last dim",
             out.ShapeString());
  LOOM_CHECK(batch <= 1 || m * n == 0 || out.stride(0) != 0,
             "Gemm: out %s has batch stride 0 (overlapping outputs)", out.ShapeString());
  if (batch == 0 || m == 0 || n == 0) return;
  if (k == 0) {  // empty sum: out = beta * out
    if (beta == 0) {
      Fill(out, 0.0);
    } else if (beta != 1) {
      Affine(out, beta, 0.0, out);
    }
    return;
  }
  if (LeadingDim(m, n, out.stride(1)) < 0) {  // overlapping output rows: go through a copy
    Tensor tmp = Tensor::Empty(out.sizes(), dt, out.device());
    if (beta != 0) Copy(out, tmp);
    Gemm(a, trans_a, b, trans_b, alpha, beta, tmp);
    Copy(tmp, out);
    return;
  }
  UseSingleThreadedBlas();
  switch (dt) {
    case DType::kF32:
      return BlasPath<float>(*this, a, trans_a, b, trans_b, k, alpha, beta, out);
    case DType::kF64:
      return BlasPath<double>(*this, a, trans_a, b, trans_b, k, alpha, beta, out);
    case DType::kBF16:
      return HalfPath<BFloat16>(a, trans_a, b, trans_b, k, alpha, beta, out);
    case DType::kF16:
      return HalfPath<Float16>(a, trans_a, b, trans_b, k, alpha, beta, out);
    default:
      break;
  }
  LOOM_CHECK(false, "Gemm: unsupported dtype %s", std::string(DTypeName(dt)));
}

}  // namespace loom::cpu
