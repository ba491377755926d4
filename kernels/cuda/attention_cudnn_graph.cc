// Construction and validation of the cuDNN SDPA graphs (see attention_cudnn_graph.h).
#include "kernels/cuda/attention_cudnn_graph.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "runtime/status.h"

namespace loom::cuda::cudnn_graph {
namespace {

using Dims = std::array<int64_t, 4>;

Dims Dense(const Dims& d) { return {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1}; }

// Appends tensors and operations, numbering virtual tensors from kFirstVirtual.
class Builder {
 public:
  GraphSpec Take() { return std::move(g_); }

  int64_t External(int64_t uid, std::string name, DataType t, Dims dims, Dims strides) {
    g_.tensors.push_back(
        {.uid = uid, .name = std::move(name), .dtype = t, .dims = dims, .strides = strides});
    return uid;
  }
  int64_t Scalar(int64_t uid, std::string name, DataType t, double value) {
    g_.tensors.push_back({.uid = uid,
                          .name = std::move(name),
                          .dtype = t,
                          .dims = {1, 1, 1, 1},
                          .strides = {1, 1, 1, 1},
                          .by_value = true,
                          .value = value});
    return uid;
  }
  int64_t Virtual(std::string name, DataType t, Dims dims) {
    const int64_t uid = next_++;
    g_.tensors.push_back({.uid = uid,
                          .name = std::move(name),
                          .dtype = t,
                          .dims = dims,
                          .strides = Dense(dims),
                          .is_virtual = true});
    return uid;
  }
  const TensorSpec& T(int64_t uid) const { return *g_.Find(uid); }

  // y = mode(inputs...), y broadcast over the inputs' dims (or written to `out`).
  int64_t Pointwise(PointwiseMode mode, std::string name, std::vector<int64_t> in, DataType y_type,
                    DataType compute = DataType::kFloat, int axis = -1, int64_t out = 0) {
    if (out == 0) {
      Dims d{1, 1, 1, 1};
      for (int64_t u : in) {
        for (int i = 0; i < 4; ++i) d[i] = std::max(d[i], T(u).dims[i]);
      }
      out = Virtual(name, y_type, d);
    }
    g_.ops.push_back({.kind = OpKind::kPointwise,
                      .name = std::move(name),
                      .pointwise = mode,
                      .compute = compute,
                      .axis = axis,
                      .inputs = std::move(in),
                      .output = out});
    return out;
  }
  // [b, h, m, k] x [b, h', k, n] -> [b, max(h, h'), m, n] (or `out`).
  int64_t Matmul(std::string name, int64_t a, int64_t b, DataType y_type, int64_t out = 0) {
    if (out == 0) {
      const Dims& da = T(a).dims;
      const Dims& db = T(b).dims;
      out = Virtual(name, y_type, {da[0], std::max(da[1], db[1]), da[2], db[3]});
    }
    g_.ops.push_back(
        {.kind = OpKind::kMatmul, .name = std::move(name), .inputs = {a, b}, .output = out});
    return out;
  }
  int64_t Reduce(ReductionMode mode, std::string name, int64_t x, Dims dims, int64_t out = 0) {
    if (out == 0) out = Virtual(name, DataType::kFloat, dims);
    g_.ops.push_back({.kind = OpKind::kReduction,
                      .name = std::move(name),
                      .reduction = mode,
                      .inputs = {x},
                      .output = out});
    return out;
  }
  // The same elements under new dims and strides (a transposed view).
  int64_t Reshape(std::string name, int64_t x, DataType t, Dims dims, Dims strides) {
    const int64_t uid = next_++;
    g_.tensors.push_back({.uid = uid,
                          .name = name,
                          .dtype = t,
                          .dims = dims,
                          .strides = strides,
                          .is_virtual = true});
    g_.ops.push_back(
        {.kind = OpKind::kReshape, .name = std::move(name), .inputs = {x}, .output = uid});
    return uid;
  }
  void AddScratch(int64_t uid, size_t bytes) { g_.scratch.push_back({uid, bytes}); }

 private:
  GraphSpec g_;
  int64_t next_ = kFirstVirtual;
};

struct Shape {
  int64_t b, h, g, t, s, e;
  DataType io;
  double scale;
};

absl::StatusOr<Shape> CheckProblem(const AttentionProblem& p, const char* op) {
  auto unimplemented = [&](auto&&... parts) {
    return absl::UnimplementedError(absl::StrCat(op, " (cuDNN): ", parts...));
  };
  auto invalid = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(op, " (cuDNN): ", parts...));
  };
  if (p.dtype != DType::kBF16 && p.dtype != DType::kF16) {
    return unimplemented("dtype ", DTypeName(p.dtype),
                         "; cuDNN's flash attention takes bf16 or f16");
  }
  if (p.cu_seqlens_q != nullptr || p.cu_seqlens_k != nullptr) {
    return unimplemented(
        "varlen (cu_seqlens) is not supported by the cuDNN path; run it with "
        "LOOM_ATTENTION=loom");
  }
  if (p.batch < 1 || p.seqlen_q < 0 || p.seqlen_k < 0 || p.heads < 1 || p.kv_heads < 1 ||
      p.head_dim < 1) {
    return invalid("sizes batch ", p.batch, " seqlen_q ", p.seqlen_q, " seqlen_k ", p.seqlen_k,
                   " heads ", p.heads, " kv_heads ", p.kv_heads, " head_dim ", p.head_dim);
  }
  if (p.heads % p.kv_heads != 0) {
    return invalid("heads ", p.heads, " is not a multiple of kv_heads ", p.kv_heads);
  }
  if (p.head_dim % 8 != 0 || p.head_dim > 256) {
    return unimplemented("head_dim ", p.head_dim, "; cuDNN needs a multiple of 8 up to 256");
  }
  if (p.seqlen_q > 0 && p.seqlen_k == 0) {
    return unimplemented("seqlen_k 0: queries that see no key are not expressible in cuDNN");
  }
  if (p.causal && p.seqlen_q > p.seqlen_k) {
    return unimplemented("causal with seqlen_q ", p.seqlen_q, " > seqlen_k ", p.seqlen_k,
                         " (rows that see no key; cuDNN's bottom-right mask needs T <= S)");
  }
  for (const BthStrides* s : {&p.q_strides, &p.k_strides, &p.v_strides, &p.out_strides}) {
    if (s->batch % 8 != 0 || s->token % 8 != 0 || s->head % 8 != 0) {
      return unimplemented("strides must be multiples of 8 elements (16-byte rows)");
    }
  }
  return Shape{p.batch,
               p.heads,
               p.kv_heads,
               p.seqlen_q,
               p.seqlen_k,
               p.head_dim,
               p.dtype == DType::kBF16 ? DataType::kBFloat16 : DataType::kHalf,
               p.scale != 0 ? p.scale : 1.0 / std::sqrt(double(p.head_dim))};
}

Dims QStrides(const BthStrides& s) { return {s.batch, s.head, s.token, 1}; }
// K^T / V^T: [b, g, e, s] views of [B, S, G, E] memory.
Dims TransposedStrides(const BthStrides& s) { return {s.batch, s.head, 1, s.token}; }

// Scores S = scale * Q K^T, causal-masked (bottom-right aligned); `subtract`
// (the stats, in the backward) is applied before the mask, as cuDNN expects.
int64_t MaskedScores(Builder& g, const Shape& sh, bool causal, int64_t q, int64_t kt,
                     int64_t subtract) {
  int64_t s = g.Matmul("bmm1_q_kt", q, kt, DataType::kFloat);
  s = g.Pointwise(PointwiseMode::kMul, "attn_scale",
                  {s, g.Scalar(kScale, "attn_scale_value", DataType::kFloat, sh.scale)},
                  DataType::kFloat);
  if (subtract != 0)
    s = g.Pointwise(PointwiseMode::kSub, "sub_stats", {s, subtract}, DataType::kFloat);
  if (!causal) return s;
  int64_t row = g.Pointwise(PointwiseMode::kGenIndex, "gen_row_index", {s}, DataType::kInt32,
                            DataType::kInt32, 2);
  const int64_t col = g.Pointwise(PointwiseMode::kGenIndex, "gen_col_index", {s}, DataType::kInt32,
                                  DataType::kInt32, 3);
  if (sh.t != sh.s) {  // query i sees keys j <= i + S - T
    row = g.Pointwise(PointwiseMode::kAdd, "row_plus_skv",
                      {row, g.Scalar(kSeqKvShift, "seq_kv", DataType::kInt32, double(sh.s))},
                      DataType::kInt32, DataType::kInt32, 3);
    row = g.Pointwise(PointwiseMode::kSub, "row_minus_sq",
                      {row, g.Scalar(kSeqQShift, "seq_q", DataType::kInt32, double(sh.t))},
                      DataType::kInt32, DataType::kInt32, 3);
  }
  const int64_t keep = g.Pointwise(PointwiseMode::kCmpGe, "row_ge_col", {row, col},
                                   DataType::kBoolean, DataType::kBoolean);
  const int64_t neg_inf =
      g.Scalar(kNegInf, "negative_inf", DataType::kFloat, -std::numeric_limits<double>::infinity());
  return g.Pointwise(PointwiseMode::kBinarySelect, "causal_select", {s, neg_inf, keep},
                     DataType::kFloat);
}

}  // namespace

const TensorSpec* GraphSpec::Find(int64_t uid) const {
  for (const TensorSpec& t : tensors) {
    if (t.uid == uid) return &t;
  }
  return nullptr;
}

const char* DataTypeName(DataType t) {
  switch (t) {
    case DataType::kFloat:
      return "f32";
    case DataType::kHalf:
      return "f16";
    case DataType::kBFloat16:
      return "bf16";
    case DataType::kInt32:
      return "i32";
    case DataType::kBoolean:
      return "bool";
  }
  return "?";
}

absl::StatusOr<GraphSpec> BuildSdpaForwardGraph(const AttentionProblem& p) {
  LOOM_ASSIGN_OR_RETURN(const Shape sh, CheckProblem(p, "AttentionForward"));
  Builder g;
  const int64_t q = g.External(kQ, "Q", sh.io, {sh.b, sh.h, sh.t, sh.e}, QStrides(p.q_strides));
  const int64_t kt =
      g.External(kK, "K^T", sh.io, {sh.b, sh.g, sh.e, sh.s}, TransposedStrides(p.k_strides));
  const int64_t v = g.External(kV, "V", sh.io, {sh.b, sh.g, sh.s, sh.e}, QStrides(p.v_strides));
  const int64_t o = g.External(kO, "O", sh.io, {sh.b, sh.h, sh.t, sh.e}, QStrides(p.out_strides));
  const int64_t stats = g.External(kStats, "Stats", DataType::kFloat, {sh.b, sh.h, sh.t, 1},
                                   {sh.h * sh.t, sh.t, 1, 1});
  const int64_t s = MaskedScores(g, sh, p.causal, q, kt, 0);
  // Softmax with statistics: stats = max + log(sum(exp(s - max))).
  const Dims row{sh.b, sh.h, sh.t, 1};
  const int64_t mx = g.Reduce(ReductionMode::kMax, "row_max", s, row);
  const int64_t ex = g.Pointwise(
      PointwiseMode::kExp, "exp",
      {g.Pointwise(PointwiseMode::kSub, "sub_max", {s, mx}, DataType::kFloat)}, DataType::kFloat);
  const int64_t sum = g.Reduce(ReductionMode::kAdd, "row_sum", ex, row);
  g.Pointwise(PointwiseMode::kAdd, "stats",
              {mx, g.Pointwise(PointwiseMode::kLog, "log_sum", {sum}, DataType::kFloat)},
              DataType::kFloat, DataType::kFloat, -1, stats);
  // P in the input dtype: the second matmul's A operand.
  const int64_t prob = g.Pointwise(PointwiseMode::kDiv, "softmax", {ex, sum}, sh.io);
  g.Matmul("bmm2_p_v", prob, v, sh.io, o);
  return g.Take();
}

absl::StatusOr<GraphSpec> BuildSdpaBackwardGraph(const AttentionBackwardProblem& bp) {
  const AttentionProblem& p = bp.fwd;
  LOOM_ASSIGN_OR_RETURN(const Shape sh, CheckProblem(p, "AttentionBackward"));
  Builder g;
  const Dims q_dims{sh.b, sh.h, sh.t, sh.e}, kv_dims{sh.b, sh.g, sh.s, sh.e};
  const int64_t q = g.External(kQ, "Q", sh.io, q_dims, QStrides(p.q_strides));
  const int64_t kt =
      g.External(kK, "K^T", sh.io, {sh.b, sh.g, sh.e, sh.s}, TransposedStrides(p.k_strides));
  const int64_t vt =
      g.External(kV, "V^T", sh.io, {sh.b, sh.g, sh.e, sh.s}, TransposedStrides(p.v_strides));
  const int64_t o = g.External(kO, "O", sh.io, q_dims, QStrides(p.out_strides));
  const int64_t d_o = g.External(kDO, "dO", sh.io, q_dims, QStrides(p.out_strides));
  const int64_t stats = g.External(kStats, "Stats", DataType::kFloat, {sh.b, sh.h, sh.t, 1},
                                   {sh.h * sh.t, sh.t, 1, 1});
  const int64_t dq = g.External(kDQ, "dQ", sh.io, q_dims, QStrides(p.q_strides));
  const int64_t dk = g.External(kDK, "dK", sh.io, kv_dims, QStrides(p.k_strides));
  const int64_t dv = g.External(kDV, "dV", sh.io, kv_dims, QStrides(p.v_strides));
  const Dims row{sh.b, sh.h, sh.t, 1};

  // softmax_sum = rowsum(dO * O), kept in scratch memory.
  const int64_t softmax_sum =
      g.External(kSoftmaxSum, "softmax_sum", DataType::kFloat, row, {sh.h * sh.t, sh.t, 1, 1});
  g.AddScratch(kSoftmaxSum, size_t(sh.b * sh.h * sh.t) * sizeof(float));
  const int64_t dot =
      g.Reduce(ReductionMode::kAdd, "rowsum_do_o",
               g.Pointwise(PointwiseMode::kMul, "mul_do_o", {d_o, o}, DataType::kFloat), row);
  g.Pointwise(PointwiseMode::kMul, "softmax_sum_scale",
              {dot, g.Scalar(kOne, "one", DataType::kFloat, 1.0)}, DataType::kFloat,
              DataType::kFloat, -1, softmax_sum);

  // P = exp(scale * Q K^T - stats), masked; dV = P^T dO (summed over each head group).
  const int64_t prob = g.Pointwise(PointwiseMode::kExp, "exp_s",
                                   {MaskedScores(g, sh, p.causal, q, kt, stats)}, DataType::kFloat);
  const Dims st_dims{sh.b, sh.h, sh.s, sh.t};
  const Dims st_strides{sh.h * sh.t * sh.s, sh.t * sh.s, 1, sh.s};  // transposed [t, s] view
  const int64_t pt = g.Reshape("p_transposed", prob, sh.io, st_dims, st_strides);
  auto head_grouped = [&](const std::string& name, int64_t a, int64_t b, int64_t out, Dims full) {
    if (sh.h == sh.g) {
      g.Matmul(name, a, b, sh.io, out);
    } else {  // every query head's product, then the sum over its group (heads h*G/H ...)
      const int64_t per_head = g.Virtual(name + "_per_head", sh.io, full);
      g.Matmul(name, a, b, sh.io, per_head);
      g.Reduce(ReductionMode::kAdd, name + "_group_sum", per_head, {}, out);
    }
  };
  head_grouped("matmul_pt_do", pt, d_o, dv, {sh.b, sh.h, sh.s, sh.e});

  // dS = P * (dO V^T - softmax_sum) * scale; dK = dS^T Q; dQ = dS K.
  const int64_t dp = g.Matmul("matmul_do_vt", d_o, vt, DataType::kFloat);
  const int64_t ds_unscaled = g.Pointwise(
      PointwiseMode::kMul, "mul_dp_p",
      {g.Pointwise(PointwiseMode::kSub, "sub_softmax_sum", {dp, softmax_sum}, DataType::kFloat),
       prob},
      DataType::kFloat);
  const int64_t ds =
      g.Pointwise(PointwiseMode::kMul, "mul_ds_scale", {ds_unscaled, kScale}, DataType::kFloat);
  const int64_t dst = g.Reshape("ds_transposed", ds, sh.io, st_dims, st_strides);
  head_grouped("matmul_dst_q", dst, q, dk, {sh.b, sh.h, sh.s, sh.e});
  const int64_t k = g.Reshape("k", kt, sh.io, kv_dims, QStrides(p.k_strides));
  if (bp.deterministic) {
    g.Matmul("matmul_ds_k", ds, k, sh.io, dq);
  } else {
    const int64_t accum = g.External(kDQAccum, "dQ_accum", DataType::kFloat, q_dims, Dense(q_dims));
    g.AddScratch(kDQAccum, size_t(sh.b * sh.h * sh.t * sh.e) * sizeof(float));
    g.Matmul("matmul_ds_k", ds, k, DataType::kFloat, accum);
    g.Pointwise(PointwiseMode::kIdentity, "cast_dq", {accum}, sh.io, DataType::kFloat, -1, dq);
  }
  return g.Take();
}

absl::Status ValidateGraph(const GraphSpec& g) {
  absl::flat_hash_map<int64_t, const TensorSpec*> by_uid;
  for (const TensorSpec& t : g.tensors) {
    if (!by_uid.emplace(t.uid, &t).second) {
      return absl::InternalError(
          absl::StrCat("tensor uid ", t.uid, " (", t.name, ") is not unique"));
    }
    for (int i = 0; i < 4; ++i) {
      if (t.dims[i] < 1) {
        return absl::InternalError(
            absl::StrCat("tensor ", t.name, " has dim ", i, " = ", t.dims[i]));
      }
    }
  }
  absl::flat_hash_set<int64_t> produced, consumed;
  auto get = [&](int64_t uid, const OpSpec& op) -> absl::StatusOr<const TensorSpec*> {
    auto it = by_uid.find(uid);
    if (it == by_uid.end()) {
      return absl::InternalError(absl::StrCat("op ", op.name, " uses unknown tensor ", uid));
    }
    return it->second;
  };
  for (const OpSpec& op : g.ops) {
    std::vector<const TensorSpec*> in;
    for (int64_t u : op.inputs) {
      LOOM_ASSIGN_OR_RETURN(const TensorSpec* t, get(u, op));
      if (t->is_virtual && !produced.contains(u)) {
        return absl::InternalError(
            absl::StrCat("op ", op.name, " reads virtual ", t->name, " before it is produced"));
      }
      consumed.insert(u);
      in.push_back(t);
    }
    LOOM_ASSIGN_OR_RETURN(const TensorSpec* y, get(op.output, op));
    if (y->by_value) return absl::InternalError(absl::StrCat("op ", op.name, " writes a scalar"));
    if (!produced.insert(op.output).second) {
      return absl::InternalError(absl::StrCat("tensor ", y->name, " is written twice"));
    }
    auto shape_error = [&](const char* what) {
      return absl::InternalError(absl::StrCat("op ", op.name, ": ", what));
    };
    switch (op.kind) {
      case OpKind::kMatmul: {
        if (in.size() != 2) return shape_error("matmul takes two inputs");
        const auto &a = in[0]->dims, &b = in[1]->dims, &c = y->dims;
        if (a[3] != b[2] || c[2] != a[2] || c[3] != b[3] || a[0] != b[0] || c[0] != a[0]) {
          return shape_error("matmul dims disagree");
        }
        if (c[1] % a[1] != 0 || c[1] % b[1] != 0)
          return shape_error("matmul heads do not broadcast");
        break;
      }
      case OpKind::kPointwise: {
        const size_t want =
            op.pointwise == PointwiseMode::kBinarySelect ? 3
            : (op.pointwise == PointwiseMode::kExp || op.pointwise == PointwiseMode::kLog ||
               op.pointwise == PointwiseMode::kIdentity || op.pointwise == PointwiseMode::kGenIndex)
                ? 1
                : 2;
        if (in.size() != want) return shape_error("wrong number of pointwise inputs");
        for (const TensorSpec* x : in) {
          for (int i = 0; i < 4; ++i) {
            if (x->dims[i] != 1 && x->dims[i] != y->dims[i]) {
              return shape_error("pointwise input does not broadcast to the output");
            }
          }
        }
        if (op.pointwise == PointwiseMode::kGenIndex && (op.axis < 0 || op.axis > 3)) {
          return shape_error("gen_index needs an axis");
        }
        break;
      }
      case OpKind::kReduction: {
        for (int i = 0; i < 4; ++i) {
          if (in[0]->dims[i] % y->dims[i] != 0) return shape_error("reduction dims do not divide");
        }
        break;
      }
      case OpKind::kReshape: {
        int64_t nx = 1, ny = 1;
        for (int i = 0; i < 4; ++i) nx *= in[0]->dims[i], ny *= y->dims[i];
        if (nx != ny) return shape_error("reshape changes the element count");
        break;
      }
    }
  }
  for (const TensorSpec& t : g.tensors) {
    if (t.is_virtual && !consumed.contains(t.uid)) {
      return absl::InternalError(absl::StrCat("virtual tensor ", t.name, " is never read"));
    }
    if (!t.is_virtual && !t.by_value && !produced.contains(t.uid) && !consumed.contains(t.uid)) {
      return absl::InternalError(absl::StrCat("tensor ", t.name, " is not used"));
    }
  }
  return absl::OkStatus();
}

}  // namespace loom::cuda::cudnn_graph
