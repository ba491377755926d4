// A host interpreter of cuDNN operation graphs (attention_cudnn_graph.h), for
// tests: runs a GraphSpec on buffers of doubles with the operations'
// documented semantics — matmul with head broadcast and per-batch M/N/K
// overrides, pointwise with broadcast, reductions (also over head groups),
// reshape as a view of the same elements, ragged tensors whose padding rows
// read as 0 and are never written — rounding every value to its tensor's
// dtype. Matmul outputs outside the overrides become NaN unless zero-padded,
// so a graph that relied on them would poison the results.
//
//   Interpreter run(graph);
//   run.Bind(kQ, &q);  // element (i0..i3) at q[sum(i_d * stride_d)]
//   run.Run();
//   double lse = run.At(kStats, {b, h, t, 0});
#ifndef LOOM_KERNELS_CUDA_CUDNN_GRAPH_INTERPRETER_H_
#define LOOM_KERNELS_CUDA_CUDNN_GRAPH_INTERPRETER_H_

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "kernels/cuda/attention_cudnn_graph.h"
#include "runtime/half.h"

namespace loom::cuda::cudnn_graph {

inline double RoundTo(DataType t, double v) {
  switch (t) {
    case DataType::kBFloat16:
      return float(BFloat16(float(v)));
    case DataType::kHalf:
      return float(Float16(float(v)));
    case DataType::kFloat:
      return float(v);
    case DataType::kInt32:
      return std::trunc(v);
    case DataType::kBoolean:
      return v != 0 ? 1 : 0;
  }
  return v;
}

// Executes a GraphSpec on host buffers of doubles.
class Interpreter {
 public:
  explicit Interpreter(const GraphSpec& g) : g_(g) {}

  // Binds a caller tensor: element (i0..i3) at buffer[sum(i_d * stride_d)].
  void Bind(int64_t uid, std::vector<double>* buffer) { bufs_[uid] = {buffer, nullptr}; }

  void Run() {
    for (const TensorSpec& t : g_.tensors) {
      if (t.is_virtual || bufs_.contains(t.uid)) continue;
      if (t.by_value) {
        Own(t.uid, 1)[0] = t.value;
      } else {  // scratch (softmax_sum, dQ_accum): sized from dims and strides
        Own(t.uid, size_t(Extent(t)));
      }
    }
    for (const OpSpec& op : g_.ops) Execute(op);
  }

  double At(int64_t uid, const std::array<int64_t, 4>& i) const {
    const TensorSpec& t = *g_.Find(uid);
    if (!Valid(t, i)) return 0;  // padding reads as the matmuls' padding value
    return (*bufs_.at(uid).data)[size_t(Offset(t, i))];
  }

 private:
  struct Buffer {
    std::vector<double>* data;
    std::shared_ptr<std::vector<double>> owned;
  };

  // Ragged tensors start each batch row at its offset and ignore the batch stride.
  int64_t Offset(const TensorSpec& t, const std::array<int64_t, 4>& i) const {
    int64_t off =
        t.ragged_offset != 0 ? int64_t(Scalar(t.ragged_offset, i[0])) : i[0] * t.strides[0];
    for (int d = 1; d < 4; ++d) off += i[d] * t.strides[d];
    return off;
  }
  // Element i[0] of an [n, 1, 1, 1] tensor.
  double Scalar(int64_t uid, int64_t i) const {
    return (*bufs_.at(uid).data)[size_t(i * g_.Find(uid)->strides[0])];
  }
  // False for the padding rows of a ragged tensor (never read nor written by cuDNN).
  bool Valid(const TensorSpec& t, const std::array<int64_t, 4>& i) const {
    return t.seq_len == 0 || i[size_t(t.seq_axis)] < int64_t(Scalar(t.seq_len, i[0]));
  }
  static int64_t Extent(const TensorSpec& t) {
    int64_t last = 0;
    for (int d = 0; d < 4; ++d) last += (t.dims[d] - 1) * t.strides[d];
    return last + 1;
  }
  std::vector<double>& Own(int64_t uid, size_t n) {
    auto owned = std::make_shared<std::vector<double>>(n, std::nan(""));
    bufs_[uid] = {owned.get(), owned};
    return *owned;
  }
  template <typename Fn>
  static void ForEach(const TensorSpec& t, Fn&& fn) {
    std::array<int64_t, 4> i;
    for (i[0] = 0; i[0] < t.dims[0]; ++i[0]) {
      for (i[1] = 0; i[1] < t.dims[1]; ++i[1]) {
        for (i[2] = 0; i[2] < t.dims[2]; ++i[2]) {
          for (i[3] = 0; i[3] < t.dims[3]; ++i[3]) fn(i);
        }
      }
    }
  }
  double Get(int64_t uid, const std::array<int64_t, 4>& i) const { return At(uid, i); }
  void Set(const TensorSpec& t, const std::array<int64_t, 4>& i, double v) {
    if (!Valid(t, i)) return;
    (*bufs_.at(t.uid).data)[size_t(Offset(t, i))] = RoundTo(t.dtype, v);
  }

  void Execute(const OpSpec& op) {
    const TensorSpec& y = *g_.Find(op.output);
    if (op.kind == OpKind::kReshape) {             // a view of the same elements
      const Buffer view = bufs_.at(op.inputs[0]);  // copied: inserting may rehash the map
      bufs_[y.uid] = view;
      return;
    }
    if (y.is_virtual) Own(y.uid, size_t(Extent(y)));
    std::vector<const TensorSpec*> in;
    for (int64_t u : op.inputs) in.push_back(g_.Find(u));
    switch (op.kind) {
      case OpKind::kMatmul: {
        const TensorSpec &a = *in[0], &b = *in[1];
        ForEach(y, [&](const std::array<int64_t, 4>& i) {
          // Per-batch overrides: outside M x N is padding (0 if requested, else
          // NaN, which must never reach a real output); K limits the sum.
          auto size = [&](int64_t uid, int64_t full) {
            return uid == 0 ? full : int64_t(Scalar(uid, i[0]));
          };
          if (i[2] >= size(op.m_override, y.dims[2]) || i[3] >= size(op.n_override, y.dims[3])) {
            Set(y, i, op.zero_padding ? 0.0 : std::nan(""));
            return;
          }
          double acc = 0;
          for (int64_t k = 0; k < size(op.k_override, a.dims[3]); ++k) {
            acc += Get(a.uid, {i[0], i[1] / (y.dims[1] / a.dims[1]), i[2], k}) *
                   Get(b.uid, {i[0], i[1] / (y.dims[1] / b.dims[1]), k, i[3]});
          }
          Set(y, i, acc);
        });
        break;
      }
      case OpKind::kPointwise: {
        ForEach(y, [&](const std::array<int64_t, 4>& i) {
          double x[3] = {0, 0, 0};
          for (size_t n = 0; n < in.size(); ++n) {
            std::array<int64_t, 4> j;
            for (int d = 0; d < 4; ++d) j[d] = in[n]->dims[d] == 1 ? 0 : i[d];
            x[n] = Get(in[n]->uid, j);
          }
          Set(y, i, Pointwise(op, x, i));
        });
        break;
      }
      case OpKind::kReduction: {
        const TensorSpec& x = *in[0];
        const bool max = op.reduction == ReductionMode::kMax;
        ForEach(y, [&](const std::array<int64_t, 4>& i) {
          Set(y, i, max ? -std::numeric_limits<double>::infinity() : 0.0);
        });
        ForEach(x, [&](const std::array<int64_t, 4>& i) {
          std::array<int64_t, 4> j;
          for (int d = 0; d < 4; ++d) j[d] = i[d] / (x.dims[d] / y.dims[d]);
          if (!Valid(y, j)) return;
          const double v = Get(x.uid, i), acc = Get(y.uid, j);
          (*bufs_.at(y.uid).data)[size_t(Offset(y, j))] =
              max ? (std::isnan(v) || v > acc ? v : acc) : acc + v;  // NaN-aware
        });
        ForEach(y, [&](const std::array<int64_t, 4>& i) { Set(y, i, Get(y.uid, i)); });
        break;
      }
      case OpKind::kReshape:
        break;
    }
  }

  static double Pointwise(const OpSpec& op, const double* x, const std::array<int64_t, 4>& i) {
    switch (op.pointwise) {
      case PointwiseMode::kAdd:
        return x[0] + x[1];
      case PointwiseMode::kSub:
        return x[0] - x[1];
      case PointwiseMode::kMul:
        return x[0] * x[1];
      case PointwiseMode::kDiv:
        return x[0] / x[1];
      case PointwiseMode::kExp:
        return std::exp(x[0]);
      case PointwiseMode::kLog:
        return std::log(x[0]);
      case PointwiseMode::kIdentity:
        return x[0];
      case PointwiseMode::kGenIndex:
        return double(i[size_t(op.axis)]);
      case PointwiseMode::kCmpGe:
        return x[0] >= x[1];
      case PointwiseMode::kCmpLt:
        return x[0] < x[1];
      case PointwiseMode::kLogicalAnd:
        return x[0] != 0 && x[1] != 0;
      case PointwiseMode::kBinarySelect:
        return x[2] != 0 ? x[0] : x[1];
    }
    return std::nan("");
  }

  const GraphSpec& g_;
  absl::flat_hash_map<int64_t, Buffer> bufs_;
};

}  // namespace loom::cuda::cudnn_graph

#endif  // LOOM_KERNELS_CUDA_CUDNN_GRAPH_INTERPRETER_H_
