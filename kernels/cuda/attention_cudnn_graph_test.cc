// The cuDNN SDPA graphs, without a GPU: structural validation, and runs of the
// graphs on real data by the host interpreter (cudnn_graph_interpreter.h)
// against the attention reference (attention_reference.h), dense and varlen.
#include "kernels/cuda/attention_cudnn_graph.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/attention_reference.h"
#include "kernels/cuda/cudnn_graph_interpreter.h"
#include "runtime/half.h"

namespace loom::cuda::cudnn_graph {
namespace {

using ::testing::HasSubstr;

struct Case {
  int64_t batch, t, s, h, g, e;
  bool causal;
  int64_t pad;  // extra elements per token row (a multiple of 8)
};

// [B, T, H, E] in memory with token stride H * E + pad; values exact in bf16.
struct Bthe {
  int64_t b, t, h, e, pad;
  std::vector<double> data;
  BthStrides Strides() const { return {t * (h * e + pad), h * e + pad, e}; }
  int64_t At(int64_t bi, int64_t ti, int64_t hi, int64_t ei) const {
    const BthStrides s = Strides();
    return bi * s.batch + ti * s.token + hi * s.head + ei;
  }
  static Bthe Random(int64_t b, int64_t t, int64_t h, int64_t e, int64_t pad, uint64_t seed) {
    Bthe x{b, t, h, e, pad, std::vector<double>(size_t(b * t * (h * e + pad)), std::nan(""))};
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> dist(-64, 64);
    for (int64_t bi = 0; bi < b; ++bi) {
      for (int64_t ti = 0; ti < t; ++ti) {
        for (int64_t hi = 0; hi < h; ++hi) {
          for (int64_t ei = 0; ei < e; ++ei)
            x.data[size_t(x.At(bi, ti, hi, ei))] = dist(rng) / 64.0;
        }
      }
    }
    return x;
  }
  std::vector<double> Dense() const {
    std::vector<double> d;
    for (int64_t bi = 0; bi < b; ++bi) {
      for (int64_t ti = 0; ti < t; ++ti) {
        for (int64_t hi = 0; hi < h; ++hi) {
          for (int64_t ei = 0; ei < e; ++ei) d.push_back(data[size_t(At(bi, ti, hi, ei))]);
        }
      }
    }
    return d;
  }
  void SetDense(const std::vector<double>& d, DataType round) {
    size_t n = 0;
    for (int64_t bi = 0; bi < b; ++bi) {
      for (int64_t ti = 0; ti < t; ++ti) {
        for (int64_t hi = 0; hi < h; ++hi) {
          for (int64_t ei = 0; ei < e; ++ei)
            data[size_t(At(bi, ti, hi, ei))] = RoundTo(round, d[n++]);
        }
      }
    }
  }
};

reference::AttentionShape RefShape(const Case& c, double scale) {
  reference::AttentionShape a{c.batch, c.t, c.s, c.h, c.g, c.e, c.causal, scale, {}};
  for (int64_t b = 0; b < c.batch; ++b) a.seqs.push_back({b, 0, c.t, 0, c.s});
  return a;
}

AttentionProblem Problem(const Case& c, const Bthe& q, const Bthe& k, const Bthe& v,
                         const Bthe& o) {
  return {.dtype = DType::kBF16,
          .batch = c.batch,
          .seqlen_q = c.t,
          .seqlen_k = c.s,
          .heads = c.h,
          .kv_heads = c.g,
          .head_dim = c.e,
          .q_strides = q.Strides(),
          .k_strides = k.Strides(),
          .v_strides = v.Strides(),
          .out_strides = o.Strides(),
          .causal = c.causal};
}

double MaxAbs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

void ExpectNear(const std::vector<double>& got, const std::vector<double>& want, double rel,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  const double tol = rel * std::max(1.0, MaxAbs(want));
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::abs(got[i] - want[i]) <= tol) && ++bad <= 3) {
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(bad, 0) << what << " tolerance " << tol;
}

const Case kCases[] = {
    {2, 5, 5, 2, 2, 8, true, 0},    // MHA, causal, square
    {1, 5, 7, 4, 2, 16, true, 8},   // GQA, causal, T < S (bottom-right), padded rows
    {2, 3, 6, 3, 1, 8, false, 0},   // MQA, full
    {1, 6, 6, 4, 4, 8, false, 16},  // MHA, full, padded rows
};

TEST(CudnnSdpaGraphTest, ForwardGraphComputesAttention) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(absl::StrCat("B ", c.batch, " T ", c.t, " S ", c.s, " H ", c.h, " G ", c.g, " E ",
                              c.e, c.causal ? " causal" : " full"));
    Bthe q = Bthe::Random(c.batch, c.t, c.h, c.e, c.pad, 1);
    Bthe k = Bthe::Random(c.batch, c.s, c.g, c.e, c.pad, 2);
    Bthe v = Bthe::Random(c.batch, c.s, c.g, c.e, c.pad, 3);
    Bthe o = Bthe::Random(c.batch, c.t, c.h, c.e, c.pad, 4);  // overwritten
    const absl::StatusOr<GraphSpec> g = BuildSdpaForwardGraph(Problem(c, q, k, v, o));
    ASSERT_TRUE(g.ok()) << g.status();
    ASSERT_TRUE(ValidateGraph(*g).ok()) << ValidateGraph(*g);
    std::vector<double> lse(size_t(c.batch * c.h * c.t), std::nan(""));
    Interpreter run(*g);
    run.Bind(kQ, &q.data);
    run.Bind(kK, &k.data);
    run.Bind(kV, &v.data);
    run.Bind(kO, &o.data);
    run.Bind(kStats, &lse);
    run.Run();

    std::vector<double> want_o, want_lse;
    reference::AttentionForward(RefShape(c, 1 / std::sqrt(double(c.e))), q.Dense(), k.Dense(),
                                v.Dense(), &want_o, &want_lse);
    ExpectNear(lse, want_lse, 1e-5, "lse");
    ExpectNear(o.Dense(), want_o, 1e-2, "O");  // P and O are rounded to bf16
  }
}

TEST(CudnnSdpaGraphTest, BackwardGraphComputesGradients) {
  for (const Case& c : kCases) {
    for (bool deterministic : {false, true}) {
      SCOPED_TRACE(absl::StrCat("B ", c.batch, " T ", c.t, " S ", c.s, " H ", c.h, " G ", c.g,
                                " E ", c.e, c.causal ? " causal" : " full",
                                deterministic ? " deterministic" : ""));
      Bthe q = Bthe::Random(c.batch, c.t, c.h, c.e, c.pad, 5);
      Bthe k = Bthe::Random(c.batch, c.s, c.g, c.e, c.pad, 6);
      Bthe v = Bthe::Random(c.batch, c.s, c.g, c.e, c.pad, 7);
      Bthe d_o = Bthe::Random(c.batch, c.t, c.h, c.e, c.pad, 8);
      const reference::AttentionShape shape = RefShape(c, 1 / std::sqrt(double(c.e)));
      std::vector<double> out, lse;
      reference::AttentionForward(shape, q.Dense(), k.Dense(), v.Dense(), &out, &lse);
      Bthe o = d_o;
      o.SetDense(out, DataType::kBFloat16);  // as the forward stored it
      Bthe dq = q, dk = k, dv = v;           // overwritten
      AttentionBackwardProblem bp{.fwd = Problem(c, q, k, v, o), .deterministic = deterministic};
      const absl::StatusOr<GraphSpec> g = BuildSdpaBackwardGraph(bp);
      ASSERT_TRUE(g.ok()) << g.status();
      ASSERT_TRUE(ValidateGraph(*g).ok()) << ValidateGraph(*g);
      Interpreter run(*g);
      run.Bind(kQ, &q.data);
      run.Bind(kK, &k.data);
      run.Bind(kV, &v.data);
      run.Bind(kO, &o.data);
      run.Bind(kDO, &d_o.data);
      run.Bind(kStats, &lse);
      run.Bind(kDQ, &dq.data);
      run.Bind(kDK, &dk.data);
      run.Bind(kDV, &dv.data);
      run.Run();

      const reference::AttentionGrads want =
          reference::AttentionBackward(shape, q.Dense(), k.Dense(), v.Dense(), d_o.Dense());
      ExpectNear(dq.Dense(), want.dq, 2e-2, "dQ");
      ExpectNear(dk.Dense(), want.dk, 2e-2, "dK");
      ExpectNear(dv.Dense(), want.dv, 2e-2, "dV");
      size_t scratch = 0;
      for (const ScratchSpec& s : g->scratch) scratch += s.bytes;
      EXPECT_EQ(scratch, size_t(c.batch * c.h * c.t) * 4 * (deterministic ? 1 : 1 + c.e));
    }
  }
}

TEST(CudnnSdpaGraphTest, CausalSquareGraphHasNoDiagonalShift) {
  Bthe q = Bthe::Random(1, 4, 2, 8, 0, 1), k = q, v = q, o = q;
  const Case c{1, 4, 4, 2, 2, 8, true, 0};
  const absl::StatusOr<GraphSpec> g = BuildSdpaForwardGraph(Problem(c, q, k, v, o));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->Find(kSeqKvShift), nullptr);
  const Case shifted{1, 3, 4, 2, 2, 8, true, 0};
  const absl::StatusOr<GraphSpec> g2 = BuildSdpaForwardGraph(Problem(shifted, q, k, v, o));
  ASSERT_TRUE(g2.ok());
  ASSERT_NE(g2->Find(kSeqKvShift), nullptr);
  EXPECT_EQ(g2->Find(kSeqKvShift)->value, 4);
  EXPECT_EQ(g2->Find(kSeqQShift)->value, 3);
}

TEST(CudnnSdpaGraphTest, RejectsWhatCudnnCannotRun) {
  Bthe x = Bthe::Random(1, 4, 2, 8, 0, 1);
  const AttentionProblem ok = Problem({1, 4, 4, 2, 2, 8, true, 0}, x, x, x, x);
  auto message = [](const AttentionProblem& p) {
    return std::string(BuildSdpaForwardGraph(p).status().message());
  };
  AttentionProblem p = ok;
  p.dtype = DType::kF32;
  EXPECT_THAT(message(p), HasSubstr("dtype f32; cuDNN's flash attention takes bf16 or f16"));
  p = ok;
  const int32_t cu[2] = {0, 4};
  p.cu_seqlens_q = cu;
  EXPECT_THAT(message(p), HasSubstr("varlen needs both cu_seqlens_q and cu_seqlens_k"));
  p.cu_seqlens_k = cu;
  p.num_seqs = 1, p.max_seqlen_q = 4, p.max_seqlen_k = 4, p.batch = 2;
  EXPECT_THAT(message(p), HasSubstr("varlen needs batch 1 (packed tokens), got 2"));
  p.batch = 1, p.num_seqs = 0;
  EXPECT_THAT(message(p), HasSubstr("varlen needs num_seqs, max_seqlen_q and max_seqlen_k >= 1"));
  p = ok;
  p.seqlen_q = 5;
  EXPECT_THAT(message(p), HasSubstr("causal with seqlen_q 5 > seqlen_k 4"));
  p = ok;
  p.head_dim = 12;
  EXPECT_THAT(message(p), HasSubstr("head_dim 12"));
  p = ok;
  p.heads = 3;
  EXPECT_THAT(message(p), HasSubstr("heads 3 is not a multiple of kv_heads 2"));
  p = ok;
  p.q_strides.token = 20;
  EXPECT_THAT(message(p), HasSubstr("multiples of 8 elements"));
  EXPECT_TRUE(absl::IsUnimplemented(BuildSdpaBackwardGraph({.fwd = p}).status()));
}

TEST(CudnnSdpaGraphTest, ValidationCatchesBrokenGraphs) {
  Bthe x = Bthe::Random(1, 4, 2, 8, 0, 1);
  const absl::StatusOr<GraphSpec> good =
      BuildSdpaForwardGraph(Problem({1, 4, 4, 2, 2, 8, true, 0}, x, x, x, x));
  ASSERT_TRUE(good.ok());
  GraphSpec g = *good;
  g.ops.erase(g.ops.begin() + 1);  // the scale: its output is read but never produced
  EXPECT_THAT(std::string(ValidateGraph(g).message()), HasSubstr("before it is produced"));
  g = *good;
  g.tensors.push_back(g.tensors.front());
  EXPECT_THAT(std::string(ValidateGraph(g).message()), HasSubstr("is not unique"));
  g = *good;
  g.ops.back().inputs = {g.ops.back().inputs[1], g.ops.back().inputs[0]};  // V x P
  EXPECT_THAT(std::string(ValidateGraph(g).message()), HasSubstr("matmul dims disagree"));
  g = *good;
  g.ops.push_back(g.ops.back());  // O written twice
  EXPECT_THAT(std::string(ValidateGraph(g).message()), HasSubstr("written twice"));
}

// ---- Varlen: packed sequences through ragged offsets, a padding mask and
// matmul overrides; statistics in padded [n, H, max_t] scratch.
struct VarlenCase {
  std::vector<int32_t> q_lens, k_lens;
  int64_t h, g, e;
  bool causal;
  int64_t pad;
};

struct Packed {
  VarlenCase c;
  std::vector<int32_t> cu_q, cu_k;
  int64_t total_q, total_k, max_q, max_k;
  explicit Packed(const VarlenCase& vc) : c(vc), cu_q{0}, cu_k{0} {
    for (int32_t l : c.q_lens) cu_q.push_back(cu_q.back() + l);
    for (int32_t l : c.k_lens) cu_k.push_back(cu_k.back() + l);
    total_q = cu_q.back(), total_k = cu_k.back();
    max_q = *std::max_element(c.q_lens.begin(), c.q_lens.end());
    max_k = *std::max_element(c.k_lens.begin(), c.k_lens.end());
  }
  int64_t n() const { return int64_t(c.q_lens.size()); }
  reference::AttentionShape Shape() const {
    reference::AttentionShape a{
        1, total_q, total_k, c.h, c.g, c.e, c.causal, 1 / std::sqrt(double(c.e)), {}};
    for (int64_t i = 0; i < n(); ++i) {
      a.seqs.push_back(
          {0, cu_q[size_t(i)], c.q_lens[size_t(i)], cu_k[size_t(i)], c.k_lens[size_t(i)]});
    }
    return a;
  }
  AttentionProblem Problem(const Bthe& q, const Bthe& k, const Bthe& v, const Bthe& o) const {
    return {.dtype = DType::kBF16,
            .batch = 1,
            .seqlen_q = total_q,
            .seqlen_k = total_k,
            .heads = c.h,
            .kv_heads = c.g,
            .head_dim = c.e,
            .q_strides = q.Strides(),
            .k_strides = k.Strides(),
            .v_strides = v.Strides(),
            .out_strides = o.Strides(),
            .cu_seqlens_q = cu_q.data(),
            .cu_seqlens_k = cu_k.data(),
            .num_seqs = n(),
            .max_seqlen_q = max_q,
            .max_seqlen_k = max_k,
            .causal = c.causal};
  }
  // The scratch the launcher fills on the device (attention_cudnn_varlen.h).
  void BindLayout(Interpreter& run, const AttentionProblem& p) {
    auto offsets = [&](const std::vector<int32_t>& cu, int64_t token_stride) {
      std::vector<double> o;
      for (int32_t x : cu) o.push_back(double(x) * double(token_stride));
      return o;
    };
    seq_q.assign(c.q_lens.begin(), c.q_lens.end());
    seq_k.assign(c.k_lens.begin(), c.k_lens.end());
    off_q = offsets(cu_q, p.q_strides.token), off_k = offsets(cu_k, p.k_strides.token);
    off_v = offsets(cu_k, p.v_strides.token), off_o = offsets(cu_q, p.out_strides.token);
    run.Bind(kSeqQ, &seq_q);
    run.Bind(kSeqK, &seq_k);
    run.Bind(kRaggedQ, &off_q);
    run.Bind(kRaggedK, &off_k);
    run.Bind(kRaggedV, &off_v);
    run.Bind(kRaggedO, &off_o);
  }
  std::vector<double> seq_q, seq_k, off_q, off_k, off_v, off_o;
};

const VarlenCase kVarlenCases[] = {
    {{3, 5, 1}, {3, 5, 1}, 4, 2, 8, true, 8},  // packed self-attention, causal, GQA
    {{2, 4}, {5, 3}, 3, 1, 16, false, 0},      // cross lengths, full, MQA
    {{2, 3}, {4, 3}, 2, 2, 8, true, 0},        // causal with Tq <= Tk per sequence
};

TEST(CudnnSdpaGraphTest, VarlenForwardGraphComputesAttention) {
  for (const VarlenCase& c : kVarlenCases) {
    Packed pk(c);
    SCOPED_TRACE(
        absl::StrCat(pk.n(), " sequences, ", c.causal ? "causal" : "full", " H ", c.h, " G ", c.g));
    Bthe q = Bthe::Random(1, pk.total_q, c.h, c.e, c.pad, 11);
    Bthe k = Bthe::Random(1, pk.total_k, c.g, c.e, c.pad, 12);
    Bthe v = Bthe::Random(1, pk.total_k, c.g, c.e, c.pad, 13);
    Bthe o = Bthe::Random(1, pk.total_q, c.h, c.e, c.pad, 14);
    const AttentionProblem p = pk.Problem(q, k, v, o);
    const absl::StatusOr<GraphSpec> g = BuildSdpaForwardGraph(p);
    ASSERT_TRUE(g.ok()) << g.status();
    ASSERT_TRUE(ValidateGraph(*g).ok()) << ValidateGraph(*g);
    Interpreter run(*g);
    run.Bind(kQ, &q.data);
    run.Bind(kK, &k.data);
    run.Bind(kV, &v.data);
    run.Bind(kO, &o.data);
    pk.BindLayout(run, p);
    run.Run();
    std::vector<double> want_o, want_lse;
    reference::AttentionForward(pk.Shape(), q.Dense(), k.Dense(), v.Dense(), &want_o, &want_lse);
    ExpectNear(o.Dense(), want_o, 1e-2, "O");
    for (int64_t i = 0; i < pk.n(); ++i) {  // the padded stats the launcher repacks
      for (int64_t h = 0; h < c.h; ++h) {
        for (int64_t t = 0; t < c.q_lens[size_t(i)]; ++t) {
          ASSERT_NEAR(run.At(kStats, {i, h, t, 0}),
                      want_lse[size_t(h * pk.total_q + pk.cu_q[size_t(i)] + t)], 1e-5);
        }
      }
    }
  }
}

TEST(CudnnSdpaGraphTest, VarlenBackwardGraphComputesGradients) {
  for (const VarlenCase& c : kVarlenCases) {
    for (bool deterministic : {false, true}) {
      Packed pk(c);
      SCOPED_TRACE(absl::StrCat(pk.n(), " sequences, ", c.causal ? "causal" : "full", " H ", c.h,
                                " G ", c.g, deterministic ? " deterministic" : ""));
      Bthe q = Bthe::Random(1, pk.total_q, c.h, c.e, c.pad, 15);
      Bthe k = Bthe::Random(1, pk.total_k, c.g, c.e, c.pad, 16);
      Bthe v = Bthe::Random(1, pk.total_k, c.g, c.e, c.pad, 17);
      Bthe d_o = Bthe::Random(1, pk.total_q, c.h, c.e, c.pad, 18);
      const reference::AttentionShape shape = pk.Shape();
      std::vector<double> out, lse;
      reference::AttentionForward(shape, q.Dense(), k.Dense(), v.Dense(), &out, &lse);
      Bthe o = d_o;
      o.SetDense(out, DataType::kBFloat16);
      // The padded statistics the launcher gathers from our lse.
      std::vector<double> stats(size_t(pk.n() * c.h * pk.max_q), 0.0);
      for (int64_t i = 0; i < pk.n(); ++i) {
        for (int64_t h = 0; h < c.h; ++h) {
          for (int64_t t = 0; t < c.q_lens[size_t(i)]; ++t) {
            stats[size_t((i * c.h + h) * pk.max_q + t)] =
                lse[size_t(h * pk.total_q + pk.cu_q[size_t(i)] + t)];
          }
        }
      }
      Bthe dq = q, dk = k, dv = v;
      const AttentionProblem p = pk.Problem(q, k, v, o);
      const absl::StatusOr<GraphSpec> g =
          BuildSdpaBackwardGraph({.fwd = p, .deterministic = deterministic});
      ASSERT_TRUE(g.ok()) << g.status();
      ASSERT_TRUE(ValidateGraph(*g).ok()) << ValidateGraph(*g);
      Interpreter run(*g);
      run.Bind(kQ, &q.data);
      run.Bind(kK, &k.data);
      run.Bind(kV, &v.data);
      run.Bind(kO, &o.data);
      run.Bind(kDO, &d_o.data);
      run.Bind(kStats, &stats);
      run.Bind(kDQ, &dq.data);
      run.Bind(kDK, &dk.data);
      run.Bind(kDV, &dv.data);
      pk.BindLayout(run, p);
      run.Run();
      const reference::AttentionGrads want =
          reference::AttentionBackward(shape, q.Dense(), k.Dense(), v.Dense(), d_o.Dense());
      ExpectNear(dq.Dense(), want.dq, 2e-2, "dQ");
      ExpectNear(dk.Dense(), want.dk, 2e-2, "dK");
      ExpectNear(dv.Dense(), want.dv, 2e-2, "dV");
    }
  }
}

}  // namespace
}  // namespace loom::cuda::cudnn_graph
