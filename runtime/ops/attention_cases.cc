// Op-harness cases for ScaledDotProductAttention (each checked against a naive
// reference and by finite differences), plus tests of 16-bit inputs, lse,
// multi-block shapes against analytic reference gradients, thread-count
// determinism and argument validation.
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "gtest/gtest.h"
#include "runtime/backend.h"
#include "runtime/ops/ops.h"
#include "runtime/parallel.h"
#include "runtime/testing/op_harness.h"

namespace loom::testing {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Token ranges over the flattened B*T (queries) and B*S (keys) axes.
struct RefSeq {
  int64_t q_begin, q_len, k_begin, k_len;
};

std::vector<RefSeq> RowSeqs(int64_t b, int64_t t, int64_t s) {
  std::vector<RefSeq> seqs;
  for (int64_t r = 0; r < b; ++r) seqs.push_back({r * t, t, r * s, s});
  return seqs;
}

std::vector<RefSeq> CuSeqs(const std::vector<double>& cu_q, const std::vector<double>& cu_k) {
  std::vector<RefSeq> seqs;
  for (size_t i = 0; i + 1 < cu_q.size(); ++i) {
    seqs.push_back({int64_t(cu_q[i]), int64_t(cu_q[i + 1] - cu_q[i]), int64_t(cu_k[i]),
                    int64_t(cu_k[i + 1] - cu_k[i])});
  }
  return seqs;
}

// A sequence starts at every row start and wherever the position is 0.
std::vector<RefSeq> PositionSeqs(const RefArray& pos) {
  const int64_t b = pos.size(0), t = pos.size(1);
  std::vector<double> cu;
  for (int64_t r = 0; r < b; ++r) {
    for (int64_t i = 0; i < t; ++i) {
      if (i == 0 || pos.at({r, i}) == 0) cu.push_back(double(r * t + i));
    }
  }
  cu.push_back(double(b * t));
  return CuSeqs(cu, cu);
}

struct RefResult {
  RefArray out, lse, gq, gk, gv;
};

// Plain attention over doubles: for every (sequence, head) the explicit scores
// matrix, the mask, a softmax per query and the weighted sum of values; with
// `gout`, also the gradients from the textbook formulas.
RefResult NaiveAttention(const RefArray& q, const RefArray& k, const RefArray& v,
                         const std::vector<RefSeq>& seqs, bool causal, double scale,
                         const RefArray* gout = nullptr) {
  const int64_t b = q.size(0), t = q.size(1), h = q.size(2), e = q.size(3);
  const int64_t g = k.size(2);
  RefResult r{RefArray(q.sizes), RefArray({b, h, t}), RefArray(q.sizes), RefArray(k.sizes),
              RefArray(v.sizes)};
  std::fill(r.lse.v.begin(), r.lse.v.end(), -kInf);
  auto qi = [&](int64_t tok, int64_t head) { return size_t((tok * h + head) * e); };
  auto ki = [&](int64_t tok, int64_t head) { return size_t((tok * g + head) * e); };
  for (const RefSeq& seq : seqs) {
    for (int64_t head = 0; head < h; ++head) {
      const int64_t kv = head / (h / g);
      const int64_t tq = seq.q_len, tk = seq.k_len;
      std::vector<std::vector<double>> p(size_t(tq), std::vector<double>(size_t(tk), 0.0));
      for (int64_t i = 0; i < tq; ++i) {
        std::vector<double> s(static_cast<size_t>(tk));
        double mx = -kInf;
        for (int64_t j = 0; j < tk; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < e; ++c) {
            dot += q.v[qi(seq.q_begin + i, head) + c] * k.v[ki(seq.k_begin + j, kv) + c];
          }
          const bool visible = !causal || j <= i + tk - tq;
          s[j] = visible ? scale * dot : -kInf;
          mx = std::max(mx, s[j]);
        }
        const int64_t tok = seq.q_begin + i;
        if (mx == -kInf) continue;  // sees no key: output 0, lse -inf
        double sum = 0;
        for (int64_t j = 0; j < tk; ++j) sum += std::exp(s[j] - mx);
        for (int64_t j = 0; j < tk; ++j) p[i][j] = std::exp(s[j] - mx) / sum;
        r.lse.v[size_t(((tok / t) * h + head) * t + tok % t)] = mx + std::log(sum);
        for (int64_t j = 0; j < tk; ++j) {
          for (int64_t c = 0; c < e; ++c) {
            r.out.v[qi(tok, head) + c] += p[i][j] * v.v[ki(seq.k_begin + j, kv) + c];
          }
        }
      }
      if (gout == nullptr) continue;
      for (int64_t i = 0; i < tq; ++i) {
        const size_t go = qi(seq.q_begin + i, head);
        std::vector<double> dp(static_cast<size_t>(tk), 0.0);
        double d = 0;
        for (int64_t j = 0; j < tk; ++j) {
          for (int64_t c = 0; c < e; ++c)
            dp[j] += gout->v[go + c] * v.v[ki(seq.k_begin + j, kv) + c];
          d += p[i][j] * dp[j];
        }
        for (int64_t j = 0; j < tk; ++j) {
          const double ds = p[i][j] * (dp[j] - d);
          const size_t kj = ki(seq.k_begin + j, kv);
          for (int64_t c = 0; c < e; ++c) {
            r.gq.v[go + c] += scale * ds * k.v[kj + c];
            r.gk.v[kj + c] += scale * ds * q.v[go + c];
            r.gv.v[kj + c] += p[i][j] * gout->v[go + c];
          }
        }
      }
    }
  }
  return r;
}

// [B, X, Y, E] -> [B, Y, X, E].
RefArray SwapHeadsAndTokens(const RefArray& x) {
  RefArray y({x.size(0), x.size(2), x.size(1), x.size(3)});
  for (int64_t b = 0; b < x.size(0); ++b) {
    for (int64_t i = 0; i < x.size(1); ++i) {
      for (int64_t j = 0; j < x.size(2); ++j) {
        for (int64_t e = 0; e < x.size(3); ++e) y.at({b, j, i, e}) = x.at({b, i, j, e});
      }
    }
  }
  return y;
}

// How a case describes its sequences.
enum class Packing { kRows, kCuSeqlensQ, kCuSeqlensQK, kPositionIds };

struct Config {
  std::string name;
  int64_t b, t, s, h, g, e;
  bool causal = true;
  double scale = 0;
  Packing packing = Packing::kRows;
  std::vector<int32_t> cu_q, cu_k;
  std::vector<int64_t> position_ids;  // [B, T]
};

double ScaleOf(const Config& c) { return c.scale != 0 ? c.scale : 1.0 / std::sqrt(double(c.e)); }

Inputs MakeInputs(const Config& c, DType dt) {
  Inputs in = {RandomNormal({c.b, c.t, c.h, c.e}, dt, 11),
               RandomNormal({c.b, c.s, c.g, c.e}, dt, 12),
               RandomNormal({c.b, c.s, c.g, c.e}, dt, 13)};
  if (c.packing == Packing::kCuSeqlensQ || c.packing == Packing::kCuSeqlensQK) {
    in.push_back(Tensor::FromVector(c.cu_q, {int64_t(c.cu_q.size())}));
  }
  if (c.packing == Packing::kCuSeqlensQK) {
    in.push_back(Tensor::FromVector(c.cu_k, {int64_t(c.cu_k.size())}));
  }
  if (c.packing == Packing::kPositionIds) {
    in.push_back(Tensor::FromVector(c.position_ids, {c.b, c.t}));
  }
  return in;
}

AttentionOptions OptionsFor(const Config& c, const Inputs& in) {
  AttentionOptions o;
  o.causal = c.causal;
  o.scale = c.scale;
  if (c.packing == Packing::kCuSeqlensQ || c.packing == Packing::kCuSeqlensQK)
    o.cu_seqlens_q = in[3];
  if (c.packing == Packing::kCuSeqlensQK) o.cu_seqlens_k = in[4];
  if (c.packing == Packing::kPositionIds) o.position_ids = in[3];
  return o;
}

std::vector<RefSeq> SeqsFor(const Config& c, const RefInputs& in) {
  switch (c.packing) {
    case Packing::kRows:
      return RowSeqs(c.b, c.t, c.s);
    case Packing::kCuSeqlensQ:
      return CuSeqs(in[3].v, in[3].v);
    case Packing::kCuSeqlensQK:
      return CuSeqs(in[3].v, in[4].v);
    case Packing::kPositionIds:
      return PositionSeqs(in[3]);
  }
  return {};
}

OpCase MakeCase(const Config& c) {
  return {.name = "attention/" + c.name,
          .make_inputs = [c](DType dt) { return MakeInputs(c, dt); },
          .grad_inputs = {0, 1, 2},
          .op =
              [c](const Inputs& in) {
                return Outputs{ScaledDotProductAttention(in[0], in[1], in[2], OptionsFor(c, in))};
              },
          .reference =
              [c](const RefInputs& in) {
                return RefOutputs{
                    NaiveAttention(in[0], in[1], in[2], SeqsFor(c, in), c.causal, ScaleOf(c)).out};
              }};
}

std::vector<Config> HarnessConfigs() {
  std::vector<Config> c = {
      {.name = "full", .b = 2, .t = 4, .s = 6, .h = 2, .g = 2, .e = 8, .causal = false},
      {.name = "causal", .b = 2, .t = 6, .s = 6, .h = 2, .g = 2, .e = 8},
      {.name = "gqa", .b = 1, .t = 5, .s = 5, .h = 4, .g = 2, .e = 8},
      {.name = "mqa", .b = 2, .t = 4, .s = 4, .h = 3, .g = 1, .e = 8},
      {.name = "causal_t_lt_s", .b = 1, .t = 3, .s = 7, .h = 2, .g = 1, .e = 8},
      // Queries 0..2 see no key: output 0, gradient 0.
      {.name = "causal_t_gt_s", .b = 2, .t = 6, .s = 3, .h = 2, .g = 2, .e = 8},
      {.name = "single_query", .b = 2, .t = 1, .s = 4, .h = 2, .g = 1, .e = 8},
      {.name = "head_dim16", .b = 1, .t = 5, .s = 5, .h = 2, .g = 2, .e = 16},
      {.name = "head_dim5", .b = 1, .t = 4, .s = 4, .h = 2, .g = 1, .e = 5},
      {.name = "scale",
       .b = 1,
       .t = 3,
       .s = 5,
       .h = 2,
       .g = 1,
       .e = 8,
       .causal = false,
       .scale = 0.3},
      {.name = "scale_causal", .b = 1, .t = 4, .s = 4, .h = 2, .g = 2, .e = 8, .scale = 1.7},
  };
  // Lengths 3, 1, 4 in one row of 8, given as cu_seqlens and as position ids.
  c.push_back({.name = "packed_cu_seqlens",
               .b = 1,
               .t = 8,
               .s = 8,
               .h = 2,
               .g = 1,
               .e = 8,
               .packing = Packing::kCuSeqlensQ,
               .cu_q = {0, 3, 4, 8}});
  c.push_back({.name = "packed_position_ids",
               .b = 1,
               .t = 8,
               .s = 8,
               .h = 2,
               .g = 1,
               .e = 8,
               .packing = Packing::kPositionIds,
               .position_ids = {0, 1, 2, 0, 0, 1, 2, 3}});
  // Two rows, each holding two sequences (2 + 4 and 5 + 1).
  c.push_back({.name = "batch2_packed",
               .b = 2,
               .t = 6,
               .s = 6,
               .h = 2,
               .g = 1,
               .e = 8,
               .packing = Packing::kCuSeqlensQK,
               .cu_q = {0, 2, 6, 11, 12},
               .cu_k = {0, 2, 6, 11, 12}});
  c.push_back({.name = "batch2_position_ids",
               .b = 2,
               .t = 6,
               .s = 6,
               .h = 2,
               .g = 1,
               .e = 8,
               .packing = Packing::kPositionIds,
               .position_ids = {0, 1, 0, 1, 2, 3, 0, 1, 2, 3, 4, 0}});
  // Query and key lengths differ per sequence: (2 queries, 4 keys) and (3, 2),
  // where the first query of the second sequence sees nothing.
  c.push_back({.name = "packed_unequal",
               .b = 1,
               .t = 5,
               .s = 6,
               .h = 2,
               .g = 1,
               .e = 8,
               .packing = Packing::kCuSeqlensQK,
               .cu_q = {0, 2, 5},
               .cu_k = {0, 4, 6}});
  // Empty sequences: no queries (its keys get zero gradients), no keys.
  c.push_back({.name = "empty_sequences",
               .b = 1,
               .t = 5,
               .s = 5,
               .h = 2,
               .g = 1,
               .e = 8,
               .causal = false,
               .packing = Packing::kCuSeqlensQK,
               .cu_q = {0, 0, 3, 5},
               .cu_k = {0, 2, 2, 5}});
  // Several 64-row query and key blocks (online softmax across key blocks,
  // causal block skipping, diagonals not aligned to blocks).
  c.push_back({.name = "multiblock_causal", .b = 1, .t = 100, .s = 100, .h = 2, .g = 1, .e = 4});
  c.push_back({.name = "multiblock_packed_unequal",
               .b = 1,
               .t = 80,
               .s = 150,
               .h = 1,
               .g = 1,
               .e = 4,
               .packing = Packing::kCuSeqlensQK,
               .cu_q = {0, 30, 80},
               .cu_k = {0, 70, 150}});
  c.push_back({.name = "multiblock_t_gt_s", .b = 1, .t = 140, .s = 70, .h = 1, .g = 1, .e = 4});
  return c;
}

LOOM_REGISTER_OP_CASES(AttentionCases) {
  std::vector<OpCase> cases;
  for (const Config& c : HarnessConfigs()) cases.push_back(MakeCase(c));
  // Length-1 sequences: out = v, and q and k get no gradient (softmax over one
  // key is constant), which finite differences cannot compare relatively;
  // Attention.LengthOneSequences checks those.
  OpCase one = MakeCase({.name = "seq_len1", .b = 2, .t = 1, .s = 1, .h = 2, .g = 1, .e = 8});
  one.grad_inputs = {2};
  cases.push_back(one);
  // Inputs as [B, heads, tokens, E] viewed through a transpose (not
  // contiguous), and k not differentiated.
  cases.push_back(
      {.name = "attention/strided_inputs",
       .make_inputs =
           [](DType dt) {
             return Inputs{RandomNormal({2, 4, 5, 8}, dt, 21), RandomNormal({2, 2, 6, 8}, dt, 22),
                           RandomNormal({2, 2, 6, 8}, dt, 23)};
           },
       .grad_inputs = {0, 2},
       .op =
           [](const Inputs& in) {
             return Outputs{ScaledDotProductAttention(
                 Transpose(in[0], 1, 2), Transpose(in[1], 1, 2), Transpose(in[2], 1, 2))};
           },
       .reference =
           [](const RefInputs& in) {
             const RefArray q = SwapHeadsAndTokens(in[0]), k = SwapHeadsAndTokens(in[1]);
             const RefArray v = SwapHeadsAndTokens(in[2]);
             return RefOutputs{
                 NaiveAttention(q, k, v, RowSeqs(2, 5, 6), true, 1 / std::sqrt(8.0)).out};
           }});
  return cases;
}

// ---- Direct tests.

void ExpectClose(const std::vector<double>& got, const std::vector<double>& want, double tol,
                 const std::string& what) {
  EXPECT_LE(RelativeError(got, want), tol) << what;
}

struct AttentionRun {
  Tensor out, gq, gk, gv;
};

// Forward and backward through the op, with upstream gradient `gout`.
AttentionRun RunOp(const Config& c, DType dt, const Tensor& gout) {
  Inputs in = MakeInputs(c, dt);
  for (int i = 0; i < 3; ++i) in[i].set_requires_grad(true);
  Tensor out = ScaledDotProductAttention(in[0], in[1], in[2], OptionsFor(c, in));
  out.Backward(Cast(gout, dt));
  return {out.Detach(), in[0].grad(), in[1].grad(), in[2].grad()};
}

RefResult Reference(const Config& c, DType dt, const Tensor& gout) {
  const Inputs in = MakeInputs(c, dt);  // the reference sees the rounded inputs
  RefInputs ref;
  for (const Tensor& t : in) ref.push_back(RefArray::Of(t));
  const RefArray g = RefArray::Of(Cast(gout, dt));
  return NaiveAttention(ref[0], ref[1], ref[2], SeqsFor(c, ref), c.causal, ScaleOf(c), &g);
}

void CheckAgainstReference(const Config& c, DType dt, double tol) {
  SCOPED_TRACE(c.name + " in " + std::string(DTypeName(dt)));
  const Tensor gout = RandomNormal({c.b, c.t, c.h, c.e}, DType::kF64, 14);
  const AttentionRun run = RunOp(c, dt, gout);
  const RefResult ref = Reference(c, dt, gout);
  ExpectClose(run.out.ToDoubles(), ref.out.v, tol, "out");
  ExpectClose(run.gq.ToDoubles(), ref.gq.v, tol, "dq");
  ExpectClose(run.gk.ToDoubles(), ref.gk.v, tol, "dk");
  ExpectClose(run.gv.ToDoubles(), ref.gv.v, tol, "dv");
}

std::vector<Config> LargeConfigs() {
  return {
      {.name = "causal_gqa_e64", .b = 1, .t = 200, .s = 200, .h = 8, .g = 2, .e = 64},
      {.name = "full_e72", .b = 2, .t = 70, .s = 130, .h = 2, .g = 1, .e = 72, .causal = false},
      {.name = "causal_t_lt_s_e24", .b = 1, .t = 90, .s = 260, .h = 2, .g = 2, .e = 24},
      {.name = "causal_t_gt_s_e16", .b = 1, .t = 260, .s = 90, .h = 3, .g = 1, .e = 16},
      {.name = "batch2_packed_e32",
       .b = 2,
       .t = 150,
       .s = 150,
       .h = 4,
       .g = 2,
       .e = 32,
       .packing = Packing::kCuSeqlensQ,
       .cu_q = {0, 65, 150, 151, 300}},
  };
}

TEST(Attention, LargeShapesMatchReferenceF64) {
  for (const Config& c : LargeConfigs()) CheckAgainstReference(c, DType::kF64, 1e-12);
}

TEST(Attention, LargeShapesMatchReferenceF32) {
  for (const Config& c : LargeConfigs()) CheckAgainstReference(c, DType::kF32, 2e-5);
}

// 16-bit inputs compute in f32; only rounding of inputs (seen by the reference
// too) and of the stored results differs from f64.
TEST(Attention, SixteenBitMatchesF64Reference) {
  const Config packed{.name = "bf16_packed",
                      .b = 2,
                      .t = 96,
                      .s = 96,
                      .h = 4,
                      .g = 2,
                      .e = 16,
                      .packing = Packing::kCuSeqlensQ,
                      .cu_q = {0, 40, 96, 150, 192}};
  const Config small{.name = "bf16_small", .b = 1, .t = 5, .s = 7, .h = 2, .g = 1, .e = 8};
  for (const Config& c : {packed, small}) {
    CheckAgainstReference(c, DType::kBF16, 1.5e-2);
    CheckAgainstReference(c, DType::kF16, 2e-3);
  }
}

TEST(Attention, LseMatchesReference) {
  const Config configs[] = {
      {.name = "t_gt_s", .b = 2, .t = 100, .s = 70, .h = 2, .g = 1, .e = 8},
      {.name = "packed",
       .b = 1,
       .t = 80,
       .s = 150,
       .h = 2,
       .g = 2,
       .e = 8,
       .packing = Packing::kCuSeqlensQK,
       .cu_q = {0, 30, 30, 80},
       .cu_k = {0, 20, 100, 150}},
      {.name = "full", .b = 1, .t = 9, .s = 5, .h = 3, .g = 3, .e = 8, .causal = false},
  };
  for (const Config& c : configs) {
    for (DType dt : {DType::kF64, DType::kF32}) {
      SCOPED_TRACE(c.name + " in " + std::string(DTypeName(dt)));
      const Inputs in = MakeInputs(c, dt);
      AttentionParams params;
      params.causal = c.causal;
      params.scale = ScaleOf(c);
      const AttentionOptions o = OptionsFor(c, in);
      params.cu_seqlens_q = o.cu_seqlens_q;
      params.cu_seqlens_k = o.cu_seqlens_k;
      const DType stat = dt == DType::kF64 ? DType::kF64 : DType::kF32;
      Tensor out = Tensor::Empty(in[0].sizes(), dt);
      Tensor lse = Tensor::Empty({c.b, c.h, c.t}, stat);
      GetBackend(Device::CPU()).AttentionForward(in[0], in[1], in[2], params, out, lse);
      RefInputs ref;
      for (const Tensor& t : in) ref.push_back(RefArray::Of(t));
      const RefArray want =
          NaiveAttention(ref[0], ref[1], ref[2], SeqsFor(c, ref), c.causal, ScaleOf(c)).lse;
      const std::vector<double> got = lse.ToDoubles();
      ASSERT_EQ(got.size(), want.v.size());
      int no_key = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        if (std::isinf(want.v[i])) {
          ++no_key;
          EXPECT_EQ(got[i], -kInf) << "lse[" << i << "]";
        } else {
          EXPECT_NEAR(got[i], want.v[i], dt == DType::kF64 ? 1e-12 : 2e-6) << "lse[" << i << "]";
        }
      }
      if (c.name != "full") {
        EXPECT_GT(no_key, 0) << "the case should have queries that see nothing";
      }
    }
  }
}

std::vector<uint8_t> Bytes(const Tensor& t) {
  std::vector<uint8_t> b(t.nbytes());
  std::memcpy(b.data(), t.raw_data(), b.size());
  return b;
}

TEST(Attention, BitIdenticalForAnyThreadCount) {
  const Config c{.name = "det",
                 .b = 1,
                 .t = 300,
                 .s = 300,
                 .h = 4,
                 .g = 2,
                 .e = 24,
                 .packing = Packing::kCuSeqlensQ,
                 .cu_q = {0, 170, 300}};
  const Tensor gout = RandomNormal({c.b, c.t, c.h, c.e}, DType::kF64, 14);
  const int saved = NumThreads();
  for (DType dt : {DType::kF32, DType::kBF16}) {
    SetNumThreads(1);
    const AttentionRun one = RunOp(c, dt, gout);
    for (int threads : {2, 3}) {
      SetNumThreads(threads);
      const AttentionRun many = RunOp(c, dt, gout);
      EXPECT_EQ(Bytes(one.out), Bytes(many.out)) << threads << " threads";
      EXPECT_EQ(Bytes(one.gq), Bytes(many.gq)) << threads << " threads";
      EXPECT_EQ(Bytes(one.gk), Bytes(many.gk)) << threads << " threads";
      EXPECT_EQ(Bytes(one.gv), Bytes(many.gv)) << threads << " threads";
    }
  }
  SetNumThreads(saved);
}

TEST(Attention, LengthOneSequences) {
  const Config c{.name = "len1",
                 .b = 1,
                 .t = 3,
                 .s = 3,
                 .h = 2,
                 .g = 1,
                 .e = 8,
                 .packing = Packing::kCuSeqlensQ,
                 .cu_q = {0, 1, 2, 3}};
  const Tensor gout = RandomNormal({c.b, c.t, c.h, c.e}, DType::kF64, 14);
  const AttentionRun run = RunOp(c, DType::kF64, gout);
  const Inputs in = MakeInputs(c, DType::kF64);
  // Each query sees only its own key: out[t, h] = v[t, h / 2], dv[t, 0] = sum over h of gout[t, h].
  const std::vector<double> out = run.out.ToDoubles(), gv = run.gv.ToDoubles();
  const std::vector<double> v = in[2].ToDoubles(), go = gout.ToDoubles();
  for (int64_t t = 0; t < c.t; ++t) {
    for (int64_t e = 0; e < c.e; ++e) {
      const size_t kv = size_t(t * c.e + e);
      EXPECT_NEAR(gv[kv], go[size_t((t * 2) * c.e + e)] + go[size_t((t * 2 + 1) * c.e + e)], 1e-14);
      for (int64_t h = 0; h < c.h; ++h) {
        EXPECT_NEAR(out[size_t((t * c.h + h) * c.e + e)], v[kv], 1e-14);
      }
    }
  }
  for (double x : run.gq.ToDoubles()) EXPECT_NEAR(x, 0.0, 1e-14);
  for (double x : run.gk.ToDoubles()) EXPECT_NEAR(x, 0.0, 1e-14);
}

TEST(Attention, CuSeqlensFromPositionIds) {
  // Row 1 starts mid-sequence (position 4): the row start still begins a sequence.
  const Tensor pos = Tensor::FromVector<int64_t>({0, 1, 2, 0, 1, 4, 5, 0, 0, 1}, {2, 5});
  const Tensor cu = CuSeqlensFromPositionIds(pos);
  EXPECT_EQ(cu.dtype(), DType::kI32);
  EXPECT_EQ(cu.ToVector<int32_t>(), (std::vector<int32_t>{0, 3, 5, 7, 8, 10}));
}

TEST(AttentionDeathTest, ValidatesArguments) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const Tensor q = RandomNormal({1, 4, 4, 8}, DType::kF32, 1);
  const Tensor k = RandomNormal({1, 4, 2, 8}, DType::kF32, 2);
  auto cu = [](std::vector<int32_t> v) { return Tensor::FromVector(v, {int64_t(v.size())}); };
  auto with_cu = [&](Tensor cq, Tensor ck = Tensor()) {
    AttentionOptions o;
    o.cu_seqlens_q = cq;
    o.cu_seqlens_k = ck;
    return o;
  };
  EXPECT_DEATH(ScaledDotProductAttention(q, RandomNormal({1, 4, 3, 8}, DType::kF32, 2),
                                         RandomNormal({1, 4, 3, 8}, DType::kF32, 3)),
               "query heads H = 4 must be a multiple of kv heads G = 3");
  EXPECT_DEATH(ScaledDotProductAttention(q, RandomNormal({1, 4, 2, 6}, DType::kF32, 2),
                                         RandomNormal({1, 4, 2, 6}, DType::kF32, 3)),
               "head dims must match");
  EXPECT_DEATH(ScaledDotProductAttention(q, k, RandomNormal({1, 5, 2, 8}, DType::kF32, 3)),
               "k \\[1, 4, 2, 8\\] and v \\[1, 5, 2, 8\\] must have one shape");
  EXPECT_DEATH(ScaledDotProductAttention(q, k, Cast(k, DType::kF64)), "share one floating dtype");
  EXPECT_DEATH(ScaledDotProductAttention(Reshape(q, {4, 4, 8}), k, k),
               "expected q \\[B, T, H, E\\]");
  EXPECT_DEATH(ScaledDotProductAttention(q, k, k, with_cu(cu({1, 4}))), "must start at 0");
  EXPECT_DEATH(ScaledDotProductAttention(q, k, k, with_cu(cu({0, 3, 2, 4}))),
               "must be non-decreasing");
  EXPECT_DEATH(ScaledDotProductAttention(q, k, k, with_cu(cu({0, 2, 3}))), "must end at 4");
  EXPECT_DEATH(
      ScaledDotProductAttention(q, k, k, with_cu(Tensor::FromVector<int64_t>({0, 4}, {2}))),
      "cu_seqlens_q must be i32");
  EXPECT_DEATH(ScaledDotProductAttention(q, k, k, with_cu(cu({0, 1, 4}), cu({0, 4}))),
               "cu_seqlens_q has 2 sequences but cu_seqlens_k has 1");
  AttentionOptions only_k;
  only_k.cu_seqlens_k = cu({0, 4});
  EXPECT_DEATH(ScaledDotProductAttention(q, k, k, only_k), "cu_seqlens_k given without");
  // Two rows of 4 tokens: a sequence over tokens [2, 6) spans both.
  const Tensor q2 = RandomNormal({2, 4, 4, 8}, DType::kF32, 1);
  const Tensor k2 = RandomNormal({2, 4, 2, 8}, DType::kF32, 2);
  EXPECT_DEATH(ScaledDotProductAttention(q2, k2, k2, with_cu(cu({0, 2, 6, 8}))),
               "sequence 1 spans tokens \\[2, 6\\), crossing a boundary between rows of 4");
  AttentionOptions bad_pos;
  bad_pos.position_ids = Tensor::FromVector<int64_t>({0, 1, 2}, {1, 3});
  EXPECT_DEATH(ScaledDotProductAttention(q, k, k, bad_pos),
               "position_ids must be \\[B, T\\] = \\[1, 4\\]");
  AttentionOptions both;
  both.position_ids = Tensor::FromVector<int64_t>({0, 1, 2, 3}, {1, 4});
  both.cu_seqlens_q = cu({0, 4});
  EXPECT_DEATH(ScaledDotProductAttention(q, k, k, both), "either position_ids or cu_seqlens");
  EXPECT_DEATH(CuSeqlensFromPositionIds(Tensor::FromVector<int32_t>({0, 1}, {1, 2})),
               "position_ids must be i64 \\[B, T\\]");
}

}  // namespace
}  // namespace loom::testing
