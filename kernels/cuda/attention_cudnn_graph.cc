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

// Where a ragged tensor's sequence lengths live and along which axis.
struct Ragged {
  int64_t offsets = 0, lengths = 0;
  int axis = -1;
};

// Per-batch actual sizes of a matmul (uids; 0 = full).
struct Overrides {
  int64_t m = 0, n = 0, k = 0;
  bool zero_padding = false;
};

// Appends tensors and operations, numbering virtual tensors from kFirstVirtual.
class Builder {
 public:
  GraphSpec Take() { return std::move(g_); }

  int64_t External(int64_t uid, std::string name, DataType t, Dims dims, Dims strides,
                   Ragged r = {}) {
    g_.tensors.push_back({.uid = uid,
                          .name = std::move(name),
                          .dtype = t,
                          .dims = dims,
                          .strides = strides,
                          .ragged_offset = r.offsets,
                          .seq_len = r.lengths,
                          .seq_axis = r.axis});
    return uid;
  }
  // A by-value scalar; one tensor per uid however often it is used.
  int64_t Scalar(int64_t uid, std::string name, DataType t, double value) {
    if (g_.Find(uid) != nullptr) return uid;
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
  int64_t Matmul(std::string name, int64_t a, int64_t b, DataType y_type, int64_t out = 0,
                 Overrides o = {}) {
    if (out == 0) {
      const Dims& da = T(a).dims;
      const Dims& db = T(b).dims;
      out = Virtual(name, y_type, {da[0], std::max(da[1], db[1]), da[2], db[3]});
    }
    g_.ops.push_back({.kind = OpKind::kMatmul,
                      .name = std::move(name),
                      .inputs = {a, b},
                      .output = out,
                      .m_override = o.m,
                      .n_override = o.n,
                      .k_override = o.k,
                      .zero_padding = o.zero_padding});
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
  int64_t Reshape(std::string name, int64_t x, DataType t, Dims dims, Dims strides, Ragged r = {}) {
    const int64_t uid = next_++;
    g_.tensors.push_back({.uid = uid,
                          .name = name,
                          .dtype = t,
                          .dims = dims,
                          .strides = strides,
                          .is_virtual = true,
                          .ragged_offset = r.offsets,
                          .seq_len = r.lengths,
                          .seq_axis = r.axis});
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
  int64_t b, h, g, t, s, e;  // varlen: b sequences of at most t queries and s keys
  DataType io;
  double scale;
  bool varlen;
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
  for (const BthStrides* s : {&p.q_strides, &p.k_strides, &p.v_strides, &p.out_strides}) {
    if (s->batch % 8 != 0 || s->token % 8 != 0 || s->head % 8 != 0) {
      return unimplemented("strides must be multiples of 8 elements (16-byte rows)");
    }
  }
  const bool varlen = p.cu_seqlens_q != nullptr || p.cu_seqlens_k != nullptr;
  if (varlen) {
    if (p.cu_seqlens_q == nullptr || p.cu_seqlens_k == nullptr) {
      return invalid("varlen needs both cu_seqlens_q and cu_seqlens_k");
    }
    if (p.batch != 1) return invalid("varlen needs batch 1 (packed tokens), got ", p.batch);
    if (p.num_seqs < 1 || p.max_seqlen_q < 1 || p.max_seqlen_k < 1) {
      return invalid("varlen needs num_seqs, max_seqlen_q and max_seqlen_k >= 1, got ", p.num_seqs,
                     ", ", p.max_seqlen_q, ", ", p.max_seqlen_k);
    }
    // Ragged offsets are i32 element offsets.
    const int64_t last =
        std::max({p.seqlen_q * p.q_strides.token, p.seqlen_k * p.k_strides.token,
                  p.seqlen_k * p.v_strides.token, p.seqlen_q * p.out_strides.token});
    if (last > std::numeric_limits<int32_t>::max()) {
      return unimplemented("packed tensors of ", last,
                           " elements exceed cuDNN's i32 ragged offsets");
    }
  } else {
    if (p.seqlen_q > 0 && p.seqlen_k == 0) {
      return unimplemented("seqlen_k 0: queries that see no key are not expressible in cuDNN");
    }
    if (p.causal && p.seqlen_q > p.seqlen_k) {
      return unimplemented("causal with seqlen_q ", p.seqlen_q, " > seqlen_k ", p.seqlen_k,
                           " (rows that see no key; cuDNN's bottom-right mask needs T <= S)");
    }
  }
  return Shape{varlen ? p.num_seqs : p.batch,
               p.heads,
               p.kv_heads,
               varlen ? p.max_seqlen_q : p.seqlen_q,
               varlen ? p.max_seqlen_k : p.seqlen_k,
               p.head_dim,
               p.dtype == DType::kBF16 ? DataType::kBFloat16 : DataType::kHalf,
               p.scale != 0 ? p.scale : 1.0 / std::sqrt(double(p.head_dim)),
               varlen};
}

// The operands of the graphs: [B, T, H, E] memory as [b, h, t, e] (queries,
// outputs) or [b, g, s, e] / transposed [b, g, e, s] (keys, values); ragged
// with per-sequence offsets in varlen graphs.
class Operands {
 public:
  Operands(Builder& g, const Shape& sh) : g_(g), sh_(sh) {
    if (!sh.varlen) return;
    const Dims one{1, 1, 1, 1};
    g.External(kSeqQ, "seq_len_q", DataType::kInt32, {sh.b, 1, 1, 1}, one);
    g.External(kSeqK, "seq_len_kv", DataType::kInt32, {sh.b, 1, 1, 1}, one);
    g.AddScratch(kSeqQ, size_t(sh.b) * 4);
    g.AddScratch(kSeqK, size_t(sh.b) * 4);
    for (int64_t uid : {kRaggedQ, kRaggedK, kRaggedV, kRaggedO}) {
      g.External(uid, absl::StrCat("ragged_offsets_", uid), DataType::kInt32, {sh.b + 1, 1, 1, 1},
                 one);
      g.AddScratch(uid, size_t(sh.b + 1) * 4);
    }
  }

  int64_t Queries(int64_t uid, const char* name, const BthStrides& st, int64_t ragged) {
    return g_.External(uid, name, sh_.io, {sh_.b, sh_.h, sh_.t, sh_.e},
                       {sh_.varlen ? sh_.t * st.token : st.batch, st.head, st.token, 1},
                       Rag(ragged, kSeqQ, 2));
  }
  int64_t Keys(int64_t uid, const char* name, const BthStrides& st, int64_t ragged,
               bool transposed) {
    const int64_t batch = sh_.varlen ? sh_.s * st.token : st.batch;
    if (transposed) {
      return g_.External(uid, name, sh_.io, {sh_.b, sh_.g, sh_.e, sh_.s},
                         {batch, st.head, 1, st.token}, Rag(ragged, kSeqK, 3));
    }
    return g_.External(uid, name, sh_.io, {sh_.b, sh_.g, sh_.s, sh_.e},
                       {batch, st.head, st.token, 1}, Rag(ragged, kSeqK, 2));
  }
  // Statistics [b, h, t, 1]: our lse, or padded scratch in varlen graphs.
  int64_t Stats() {
    if (sh_.varlen) g_.AddScratch(kStats, size_t(sh_.b * sh_.h * sh_.t) * sizeof(float));
    return g_.External(kStats, "Stats", DataType::kFloat, {sh_.b, sh_.h, sh_.t, 1},
                       {sh_.h * sh_.t, sh_.t, 1, 1}, Rag(0, kSeqQ, 2));
  }
  // K as [b, g, s, e] again, viewed from K^T (the backward's last matmul).
  int64_t KeysFromTransposed(int64_t kt, const BthStrides& st) {
    return g_.Reshape("k", kt, sh_.io, {sh_.b, sh_.g, sh_.s, sh_.e},
                      {sh_.varlen ? sh_.s * st.token : st.batch, st.head, st.token, 1},
                      Rag(kRaggedK, kSeqK, 2));
  }
  Overrides Mnk(int64_t m, int64_t n, int64_t k, bool zero_padding = false) const {
    if (!sh_.varlen) return {};
    return {.m = m, .n = n, .k = k, .zero_padding = zero_padding};
  }

 private:
  Ragged Rag(int64_t offsets, int64_t lengths, int axis) const {
    if (!sh_.varlen) return {};
    return {.offsets = offsets, .lengths = lengths, .axis = axis};
  }
  Builder& g_;
  const Shape& sh_;
};

int64_t NegInf(Builder& g) {
  return g.Scalar(kNegInf, "negative_inf", DataType::kFloat,
                  -std::numeric_limits<double>::infinity());
}

// Scores scale * Q K^T with the padding mask (varlen), then `subtract` (the
// stats, in the backward), then the causal mask (bottom-right aligned per
// sequence): the order of cudnn-frontend's composite graphs.
int64_t MaskedScores(Builder& g, Operands& ops, const Shape& sh, bool causal, int64_t q, int64_t kt,
                     int64_t subtract) {
  int64_t s = g.Matmul("bmm1_q_kt", q, kt, DataType::kFloat, 0,
                       ops.Mnk(kSeqQ, kSeqK, 0, /*zero_padding=*/subtract == 0));
  s = g.Pointwise(PointwiseMode::kMul, "attn_scale",
                  {s, g.Scalar(kScale, "attn_scale_value", DataType::kFloat, sh.scale)},
                  DataType::kFloat);
  auto index = [&](const char* name, int axis) {
    return g.Pointwise(PointwiseMode::kGenIndex, name, {s}, DataType::kInt32, DataType::kInt32,
                       axis);
  };
  if (sh.varlen) {  // keep rows < seq_len_q and columns < seq_len_kv
    const int64_t row_ok =
        g.Pointwise(PointwiseMode::kCmpLt, "row_lt_seq_q", {index("gen_row_padding", 2), kSeqQ},
                    DataType::kBoolean, DataType::kBoolean);
    const int64_t col_ok =
        g.Pointwise(PointwiseMode::kCmpLt, "col_lt_seq_kv", {index("gen_col_padding", 3), kSeqK},
                    DataType::kBoolean, DataType::kBoolean);
    const int64_t keep = g.Pointwise(PointwiseMode::kLogicalAnd, "padding_and", {row_ok, col_ok},
                                     DataType::kBoolean, DataType::kBoolean);
    s = g.Pointwise(PointwiseMode::kBinarySelect, "padding_select", {s, NegInf(g), keep},
                    DataType::kFloat);
  }
  if (subtract != 0) {
    s = g.Pointwise(PointwiseMode::kSub, "sub_stats", {s, subtract}, DataType::kFloat);
  }
  if (!causal) return s;
  int64_t row = index("gen_row_index", 2);
  const int64_t col = index("gen_col_index", 3);
  // Query i of a sequence with Tq queries and Tk keys sees keys j <= i + Tk - Tq.
  int64_t seq_k = 0, seq_q = 0;
  if (sh.varlen) {
    seq_k = kSeqK, seq_q = kSeqQ;
  } else if (sh.t != sh.s) {
    seq_k = g.Scalar(kSeqKvShift, "seq_kv", DataType::kInt32, double(sh.s));
    seq_q = g.Scalar(kSeqQShift, "seq_q", DataType::kInt32, double(sh.t));
  }
  if (seq_k != 0) {
    row = g.Pointwise(PointwiseMode::kAdd, "row_plus_skv", {row, seq_k}, DataType::kInt32,
                      DataType::kInt32, 3);
    row = g.Pointwise(PointwiseMode::kSub, "row_minus_sq", {row, seq_q}, DataType::kInt32,
                      DataType::kInt32, 3);
  }
  const int64_t keep = g.Pointwise(PointwiseMode::kCmpGe, "row_ge_col", {row, col},
                                   DataType::kBoolean, DataType::kBoolean);
  return g.Pointwise(PointwiseMode::kBinarySelect, "causal_select", {s, NegInf(g), keep},
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
  Operands ops(g, sh);
  const int64_t q = ops.Queries(kQ, "Q", p.q_strides, kRaggedQ);
  const int64_t kt = ops.Keys(kK, "K^T", p.k_strides, kRaggedK, /*transposed=*/true);
  const int64_t v = ops.Keys(kV, "V", p.v_strides, kRaggedV, /*transposed=*/false);
  const int64_t o = ops.Queries(kO, "O", p.out_strides, kRaggedO);
  const int64_t stats = ops.Stats();
  const int64_t s = MaskedScores(g, ops, sh, p.causal, q, kt, 0);
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
  g.Matmul("bmm2_p_v", prob, v, sh.io, o, ops.Mnk(kSeqQ, 0, kSeqK));
  return g.Take();
}

absl::StatusOr<GraphSpec> BuildSdpaBackwardGraph(const AttentionBackwardProblem& bp) {
  const AttentionProblem& p = bp.fwd;
  LOOM_ASSIGN_OR_RETURN(const Shape sh, CheckProblem(p, "AttentionBackward"));
  Builder g;
  Operands ops(g, sh);
  const Dims q_dims{sh.b, sh.h, sh.t, sh.e};
  const int64_t q = ops.Queries(kQ, "Q", p.q_strides, kRaggedQ);
  const int64_t kt = ops.Keys(kK, "K^T", p.k_strides, kRaggedK, /*transposed=*/true);
  const int64_t vt = ops.Keys(kV, "V^T", p.v_strides, kRaggedV, /*transposed=*/true);
  const int64_t o = ops.Queries(kO, "O", p.out_strides, kRaggedO);
  const int64_t d_o = ops.Queries(kDO, "dO", p.out_strides, kRaggedO);
  const int64_t stats = ops.Stats();
  const int64_t dq = ops.Queries(kDQ, "dQ", p.q_strides, kRaggedQ);
  const int64_t dk = ops.Keys(kDK, "dK", p.k_strides, kRaggedK, /*transposed=*/false);
  const int64_t dv = ops.Keys(kDV, "dV", p.v_strides, kRaggedV, /*transposed=*/false);
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
  const int64_t prob =
      g.Pointwise(PointwiseMode::kExp, "exp_s", {MaskedScores(g, ops, sh, p.causal, q, kt, stats)},
                  DataType::kFloat);
  const Dims st_dims{sh.b, sh.h, sh.s, sh.t};
  const Dims st_strides{sh.h * sh.t * sh.s, sh.t * sh.s, 1, sh.s};  // transposed [t, s] view
  const int64_t pt = g.Reshape("p_transposed", prob, sh.io, st_dims, st_strides);
  auto head_grouped = [&](const std::string& name, int64_t a, int64_t b, int64_t out, Overrides o) {
    if (sh.h == sh.g) {
      g.Matmul(name, a, b, sh.io, out, o);
    } else {  // every query head's product, then the sum over its group (heads h*G/H ...)
      const int64_t per_head = g.Virtual(name + "_per_head", sh.io, {sh.b, sh.h, sh.s, sh.e});
      g.Matmul(name, a, b, sh.io, per_head, o);
      g.Reduce(ReductionMode::kAdd, name + "_group_sum", per_head, {}, out);
    }
  };
  head_grouped("matmul_pt_do", pt, d_o, dv, ops.Mnk(kSeqK, 0, kSeqQ));

  // dS = P * (dO V^T - softmax_sum) * scale; dK = dS^T Q; dQ = dS K.
  const int64_t dp =
      g.Matmul("matmul_do_vt", d_o, vt, DataType::kFloat, 0, ops.Mnk(kSeqQ, kSeqK, 0));
  const int64_t ds_unscaled = g.Pointwise(
      PointwiseMode::kMul, "mul_dp_p",
      {g.Pointwise(PointwiseMode::kSub, "sub_softmax_sum", {dp, softmax_sum}, DataType::kFloat),
       prob},
      DataType::kFloat);
  const int64_t ds =
      g.Pointwise(PointwiseMode::kMul, "mul_ds_scale", {ds_unscaled, kScale}, DataType::kFloat);
  const int64_t dst = g.Reshape("ds_transposed", ds, sh.io, st_dims, st_strides);
  head_grouped("matmul_dst_q", dst, q, dk, ops.Mnk(kSeqK, 0, kSeqQ));
  const int64_t k = ops.KeysFromTransposed(kt, p.k_strides);
  if (bp.deterministic) {
    g.Matmul("matmul_ds_k", ds, k, sh.io, dq, ops.Mnk(kSeqQ, 0, kSeqK));
  } else {
    const int64_t accum = g.External(kDQAccum, "dQ_accum", DataType::kFloat, q_dims, Dense(q_dims));
    g.AddScratch(kDQAccum, size_t(sh.b * sh.h * sh.t * sh.e) * sizeof(float));
    g.Matmul("matmul_ds_k", ds, k, DataType::kFloat, accum, ops.Mnk(kSeqQ, 0, kSeqK));
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
  // Tensors referenced as layout or size information count as read.
  auto referenced = [&](int64_t uid, const std::string& by) -> absl::Status {
    if (uid == 0) return absl::OkStatus();
    auto it = by_uid.find(uid);
    if (it == by_uid.end()) {
      return absl::InternalError(absl::StrCat(by, " refers to unknown tensor ", uid));
    }
    if (it->second->dtype != DataType::kInt32 || it->second->dims[1] != 1 ||
        it->second->dims[2] != 1 || it->second->dims[3] != 1) {
      return absl::InternalError(
          absl::StrCat(by, " refers to ", it->second->name, ", not an i32 [n, 1, 1, 1] tensor"));
    }
    consumed.insert(uid);
    return absl::OkStatus();
  };
  for (const TensorSpec& t : g.tensors) {
    LOOM_RETURN_IF_ERROR(referenced(t.ragged_offset, t.name));
    LOOM_RETURN_IF_ERROR(referenced(t.seq_len, t.name));
    if (t.ragged_offset != 0 && by_uid.at(t.ragged_offset)->dims[0] != t.dims[0] + 1) {
      return absl::InternalError(
          absl::StrCat("ragged offsets of ", t.name, " need ", t.dims[0] + 1, " entries"));
    }
    if (t.seq_len != 0 && (t.seq_axis < 2 || t.seq_axis > 3)) {
      return absl::InternalError(absl::StrCat(t.name, " has lengths but no sequence axis"));
    }
  }
  for (const OpSpec& op : g.ops) {
    for (int64_t u : {op.m_override, op.n_override, op.k_override}) {
      LOOM_RETURN_IF_ERROR(referenced(u, op.name));
    }
  }
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
