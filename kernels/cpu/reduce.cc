// CPU reductions (sum, mean, max, min, sum of squares) over any set of dims.
//
// The reduced elements of each output are visited in row-major order in
// blocks of kBlock; block partials (f64) are combined in block order. The
// result is therefore identical for any number of threads.
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_backend.h"
#include "runtime/parallel.h"

namespace loom::cpu {
namespace {

constexpr int64_t kBlock = 8192;

// Offsets of the elements of an N-d index space, walked in row-major order.
struct Walker {
  Dims sizes, strides;
  int64_t OffsetOf(int64_t linear) const {
    int64_t off = 0;
    for (int d = int(sizes.size()) - 1; d >= 0; --d) {
      off += (linear % sizes[d]) * strides[d];
      linear /= sizes[d];
    }
    return off;
  }
};

}  // namespace

void CpuBackend::Reduce(ReduceOp op, const Tensor& x, const std::vector<bool>& reduce_dim,
                        const Tensor& out) {
  LOOM_CHECK(int(reduce_dim.size()) == x.dim() && out.dim() == x.dim(),
             "Reduce: %s into %s", x.ShapeString(), out.ShapeString());
  LOOM_CHECK(out.is_contiguous(), "Reduce: output must be contiguous");
  Walker kept, reduced;
  for (int d = 0; d < x.dim(); ++d) {
    LOOM_CHECK(out.size(d) == (reduce_dim[d] ? 1 : x.size(d)), "Reduce: %s into %s", x.ShapeString(),
               out.ShapeString());
    Walker& w = reduce_dim[d] ? reduced : kept;
    w.sizes.push_back(x.size(d));
    w.strides.push_back(x.stride(d));
  }
  const int64_t n_out = NumElements(kept.sizes);
  const int64_t n_in = NumElements(reduced.sizes);
  const int64_t n_blocks = std::max<int64_t>(1, (n_in + kBlock - 1) / kBlock);
  LOOM_CHECK(n_in > 0 || op == ReduceOp::kSum || op == ReduceOp::kSumSquares,
             "Reduce: max/min/mean over an empty dim of %s", x.ShapeString());

  std::vector<double> result(static_cast<size_t>(n_out));
  DispatchArithmetic(x.dtype(), "Reduce", [&](auto tag) {
    using T = decltype(tag);
    const T* xs = static_cast<const T*>(x.raw_data());
    std::vector<double> partial(size_t(n_out * n_blocks));
    ParallelFor(n_out * n_blocks, 1, [&](int64_t b, int64_t e) {
      for (int64_t job = b; job < e; ++job) {
        if (n_in == 0) continue;  // an empty reduced dim: the partial stays 0 (a sum)
        const int64_t o = job / n_blocks, blk = job % n_blocks;
        const int64_t base = kept.OffsetOf(o);
        const int64_t lo = blk * kBlock, hi = std::min(n_in, lo + kBlock);
        double acc = op == ReduceOp::kMax   ? -std::numeric_limits<double>::infinity()
                     : op == ReduceOp::kMin ? std::numeric_limits<double>::infinity()
                                            : 0.0;
        // Walk the reduced index space incrementally from `lo`.
        const int nd = int(reduced.sizes.size());
        Dims idx(nd, 0);
        int64_t rem = lo, off = 0;
        for (int d = nd - 1; d >= 0; --d) {
          idx[d] = rem % reduced.sizes[d];
          rem /= reduced.sizes[d];
          off += idx[d] * reduced.strides[d];
        }
        for (int64_t i = lo; i < hi; ++i) {
          const double v = ToDouble(xs[base + off]);
          switch (op) {
            case ReduceOp::kSum:
            case ReduceOp::kMean: acc += v; break;
            case ReduceOp::kSumSquares: acc += v * v; break;
            case ReduceOp::kMax: acc = (v > acc || std::isnan(v)) ? v : acc; break;
            case ReduceOp::kMin: acc = (v < acc || std::isnan(v)) ? v : acc; break;
          }
          for (int d = nd - 1; d >= 0; --d) {
            off += reduced.strides[d];
            if (++idx[d] < reduced.sizes[d]) break;
            off -= idx[d] * reduced.strides[d];
            idx[d] = 0;
          }
        }
        partial[size_t(job)] = acc;
      }
    });
    for (int64_t i = 0; i < n_out; ++i) {
      double acc = partial[size_t(i * n_blocks)];
      for (int64_t blk = 1; blk < n_blocks; ++blk) {
        const double v = partial[size_t(i * n_blocks + blk)];
        switch (op) {
          case ReduceOp::kSum:
          case ReduceOp::kMean:
          case ReduceOp::kSumSquares: acc += v; break;
          case ReduceOp::kMax: acc = (v > acc || std::isnan(v)) ? v : acc; break;
          case ReduceOp::kMin: acc = (v < acc || std::isnan(v)) ? v : acc; break;
        }
      }
      if (op == ReduceOp::kMean) acc /= double(n_in);
      result[size_t(i)] = acc;
    }
  });
  DispatchArithmetic(out.dtype(), "Reduce", [&](auto tag) {
    using O = decltype(tag);
    O* o = static_cast<O*>(out.raw_data());
    for (int64_t i = 0; i < n_out; ++i) o[i] = FromDouble<O>(result[size_t(i)]);
  });
}

}  // namespace loom::cpu
