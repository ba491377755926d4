// The attention launchers under the emulator against the double-precision
// reference: tensor-core (FlashAttention-2) and SIMT kernels, forward and
// backward (both dQ modes), causal and full, grouped- and multi-query heads,
// head dims 64 and 128, bf16 and f16 (f32 and f64 on the SIMT path), packed
// varlen rows, unequal query and key lengths, sequence length 1, strided
// layouts, and argument errors.
#include "kernels/cuda/attention.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_internal.h"
#include "kernels/cuda/attention_reference.h"
#include "kernels/cuda/testing/compare.h"
#include "kernels/cuda/testing/host_buffer.h"
#include "kernels/cuda/testing/schedules.h"

namespace loom::cuda_emu {
namespace {

using kernel_testing::HostBuffer;
using kernel_testing::RelativeError;
using kernel_testing::Schedule;
using kernel_testing::Schedules;
using ::testing::HasSubstr;

enum class Kernel { kFlash, kSimt };

struct Case {
  DType dtype = DType::kBF16;
  int64_t batch = 1, heads = 2, kv_heads = 1, head_dim = 64;
  bool causal = true;
  // Per sequence: (q_len, k_len). With batch > 1 every batch row has the
  // single sequence seqs[0]; with batch == 1 and several seqs they are packed.
  std::vector<std::pair<int64_t, int64_t>> seqs = {{70, 70}};
  bool heads_major = false;  // q/out stored [B, H, T, E] instead of [B, T, H, E]
  Kernel kernel = Kernel::kFlash;

  bool varlen() const { return seqs.size() > 1; }
  std::string Name() const {
    std::vector<std::string> s;
    for (auto [q, k] : seqs) s.push_back(absl::StrCat(q, "/", k));
    return absl::StrCat(DTypeName(dtype), " B", batch, " H", heads, " G", kv_heads, " E", head_dim,
                        causal ? " causal" : " full", " seqs ", absl::StrJoin(s, ","),
                        heads_major ? " heads-major" : "",
                        kernel == Kernel::kFlash ? " flash" : " simt");
  }
};

// The relative error (compare.h) of a whole output.
double AttentionTolerance(DType dt) {
  switch (dt) {
    case DType::kF64:
      return 1e-12;
    case DType::kF32:
      return 1e-5;
    case DType::kF16:
      return 4e-3;
    default:
      return 2e-2;
  }
}

struct Problem {
  Case c;
  int64_t T = 0, S = 0;
  reference::AttentionShape shape;
  std::vector<int32_t> cu_q, cu_k;
  HostBuffer q, k, v, out, dout, gq, gk, gv, lse;
  std::vector<unsigned char> workspace;
  AttentionProblem p;

  explicit Problem(const Case& cs)
      : c(cs),
        T(Total(cs, true)),
        S(Total(cs, false)),
        q(cs.dtype, cs.batch * T * cs.heads * cs.head_dim),
        k(cs.dtype, cs.batch * S * cs.kv_heads * cs.head_dim),
        v(cs.dtype, k.count()),
        out(cs.dtype, q.count()),
        dout(cs.dtype, q.count()),
        gq(cs.dtype, q.count()),
        gk(cs.dtype, k.count()),
        gv(cs.dtype, k.count()),
        lse(cs.dtype == DType::kF64 ? DType::kF64 : DType::kF32, cs.batch * cs.heads * T) {
    // out, gq, gk, gv and lse stay NaN (HostBuffer's fill): every element must be written.
    q.FillRandom(1);
    k.FillRandom(2);
    v.FillRandom(3);
    dout.FillRandom(4);
    shape = {c.batch,    T,          S,        c.heads,
             c.kv_heads, c.head_dim, c.causal, 1.0 / std::sqrt(double(c.head_dim)),
             {}};
    if (c.varlen()) {
      cu_q = {0};
      cu_k = {0};
      for (auto [ql, kl] : c.seqs) {
        shape.seqs.push_back({0, cu_q.back(), ql, cu_k.back(), kl});
        cu_q.push_back(cu_q.back() + int32_t(ql));
        cu_k.push_back(cu_k.back() + int32_t(kl));
      }
    } else {
      for (int64_t b = 0; b < c.batch; ++b) shape.seqs.push_back({b, 0, T, 0, S});
    }
    const int64_t E = c.head_dim;
    const BthStrides q_strides = c.heads_major ? BthStrides{c.heads * T * E, E, T * E}
                                               : BthStrides{T * c.heads * E, c.heads * E, E};
    const BthStrides k_strides{S * c.kv_heads * E, c.kv_heads * E, E};
    p = {.dtype = c.dtype,
         .batch = c.batch,
         .seqlen_q = T,
         .seqlen_k = S,
         .heads = c.heads,
         .kv_heads = c.kv_heads,
         .head_dim = E,
         .q = q.data(),
         .k = k.data(),
         .v = v.data(),
         .q_strides = q_strides,
         .k_strides = k_strides,
         .v_strides = k_strides,
         .out = out.data(),
         .out_strides = q_strides,
         .lse = lse.data(),
         .cu_seqlens_q = c.varlen() ? cu_q.data() : nullptr,
         .cu_seqlens_k = c.varlen() ? cu_k.data() : nullptr,
         .num_seqs = c.varlen() ? int64_t(c.seqs.size()) : 0,
         .causal = c.causal};
    for (auto [ql, kl] : c.seqs) {
      p.max_seqlen_q = std::max(p.max_seqlen_q, ql);
      p.max_seqlen_k = std::max(p.max_seqlen_k, kl);
    }
    workspace.resize(AttentionBackwardWorkspaceBytes(p) + 256);
  }

  static int64_t Total(const Case& c, bool queries) {
    int64_t n = 0;
    for (auto [ql, kl] : c.seqs) n += queries ? ql : kl;
    return n;
  }

  // The dense [B, T, H, E] values of a q-like buffer (undoing heads_major).
  std::vector<double> Dense(const HostBuffer& b) const {
    if (!c.heads_major) return b.ToDoubles();
    std::vector<double> d(size_t(b.count()));
    const int64_t E = c.head_dim;
    for (int64_t bb = 0; bb < c.batch; ++bb) {
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t h = 0; h < c.heads; ++h) {
          for (int64_t e = 0; e < E; ++e) {
            d[size_t(((bb * T + t) * c.heads + h) * E + e)] =
                b.Get(((bb * c.heads + h) * T + t) * E + e);
          }
        }
      }
    }
    return d;
  }

  absl::Status Forward() {
    const attn::DeviceProblem d = attn::MakeDeviceProblem(p, nullptr);
    if (c.kernel == Kernel::kSimt) return attn::LaunchSimtForward(p, d, nullptr);
    EXPECT_TRUE(attn::FlashEligible(p)) << c.Name();
    return attn::LaunchFlashForward(p, d, nullptr);
  }

  absl::Status Backward(bool deterministic) {
    uintptr_t w = reinterpret_cast<uintptr_t>(workspace.data());
    AttentionBackwardProblem b{.fwd = p,
                               .gout = dout.data(),
                               .gq = gq.data(),
                               .gk = gk.data(),
                               .gv = gv.data(),
                               .workspace = workspace.data() + (256 - w % 256) % 256,
                               .deterministic = deterministic};
    const attn::DeviceProblem d = attn::MakeDeviceProblem(p, &b);
    if (c.kernel == Kernel::kSimt) return attn::LaunchSimtBackward(b, d, nullptr);
    return attn::LaunchFlashBackward(b, d, nullptr);
  }
};

void CheckForward(const Case& c, int seeds = 2) {
  for (const Schedule& schedule : Schedules(seeds)) {
    SCOPED_TRACE(c.Name() + ", " + schedule.Name());
    emu::ScopedOptions scoped(schedule.options);
    Problem pr(c);
    const absl::Status fs = pr.Forward();
    ASSERT_TRUE(fs.ok()) << fs;
    std::vector<double> out, lse;
    reference::AttentionForward(pr.shape, pr.Dense(pr.q), pr.k.ToDoubles(), pr.v.ToDoubles(), &out,
                                &lse);
    EXPECT_LE(RelativeError(pr.Dense(pr.out), out), AttentionTolerance(c.dtype));
    const std::vector<double> got_lse = pr.lse.ToDoubles();
    for (size_t i = 0; i < lse.size(); ++i) {
      if (std::isinf(lse[i])) {
        EXPECT_TRUE(std::isinf(got_lse[i]) && got_lse[i] < 0) << "lse " << i << " " << got_lse[i];
      } else {
        EXPECT_NEAR(got_lse[i], lse[i], c.dtype == DType::kF64 ? 1e-12 : 1e-4) << "lse " << i;
      }
    }
  }
}

void CheckBackward(const Case& c, bool deterministic, int seeds = 2) {
  for (const Schedule& schedule : Schedules(seeds)) {
    SCOPED_TRACE(c.Name() + (deterministic ? " deterministic, " : ", ") + schedule.Name());
    emu::ScopedOptions scoped(schedule.options);
    Problem pr(c);
    const absl::Status fs = pr.Forward();
    ASSERT_TRUE(fs.ok()) << fs;
    const absl::Status bs = pr.Backward(deterministic);
    ASSERT_TRUE(bs.ok()) << bs;
    const reference::AttentionGrads g = reference::AttentionBackward(
        pr.shape, pr.Dense(pr.q), pr.k.ToDoubles(), pr.v.ToDoubles(), pr.Dense(pr.dout));
    const double tol = 1.5 * AttentionTolerance(c.dtype);
    EXPECT_LE(RelativeError(pr.Dense(pr.gq), g.dq), tol) << "dq";
    EXPECT_LE(RelativeError(pr.gk.ToDoubles(), g.dk), tol) << "dk";
    EXPECT_LE(RelativeError(pr.gv.ToDoubles(), g.dv), tol) << "dv";
  }
}

// ---- Tensor-core kernels.

TEST(FlashAttentionTest, ForwardHeadDimsDtypesMasks) {
  for (DType dt : {DType::kBF16, DType::kF16}) {
    for (int64_t e : {64, 128}) {
      for (bool causal : {true, false}) {
        CheckForward({.dtype = dt,
                      .batch = 2,
                      .heads = 4,
                      .kv_heads = 2,
                      .head_dim = e,
                      .causal = causal,
                      .seqs = {{70, 70}}});
      }
    }
  }
}

TEST(FlashAttentionTest, ForwardUnequalLengthsAndLengthOne) {
  // Causal with fewer queries than keys (decode-like) and more (some queries see nothing).
  CheckForward({.seqs = {{40, 100}}}, 2);
  CheckForward({.seqs = {{100, 40}}}, 2);
  CheckForward({.seqs = {{1, 1}}});
  CheckForward({.seqs = {{1, 90}}, .kernel = Kernel::kFlash});
  CheckForward({.causal = false, .seqs = {{65, 1}}});
}

TEST(FlashAttentionTest, ForwardLongRowsCycleTheKeyBuffers) {
  // Four or more key tiles: every shared-memory buffer is refilled after use.
  CheckForward({.heads = 1, .seqs = {{130, 260}}}, 2);
  CheckForward({.heads = 1, .causal = false, .seqs = {{64, 200}}});
}

TEST(FlashAttentionTest, ForwardMultiQueryAndHeadsMajorLayout) {
  CheckForward({.heads = 4, .kv_heads = 1, .head_dim = 128, .seqs = {{33, 33}}});
  CheckForward({.heads = 2, .kv_heads = 2, .seqs = {{70, 70}}, .heads_major = true});
}

TEST(FlashAttentionTest, ForwardPackedVarlen) {
  // Many short samples in one row, and per-sample unequal query/key lengths.
  CheckForward({.heads = 2, .kv_heads = 1, .seqs = {{1, 1}, {5, 5}, {64, 64}, {70, 70}, {3, 3}}},
               2);
  CheckForward({.causal = false, .seqs = {{7, 20}, {30, 9}, {2, 2}}});
  CheckForward({.head_dim = 128, .seqs = {{10, 30}, {65, 65}}});
}

TEST(FlashAttentionTest, BackwardAtomicAndDeterministic) {
  for (bool det : {false, true}) {
    CheckBackward({.batch = 2, .heads = 4, .kv_heads = 2, .head_dim = 64, .seqs = {{70, 70}}}, det);
    CheckBackward({.dtype = DType::kF16,
                   .heads = 2,
                   .kv_heads = 1,
                   .head_dim = 128,
                   .causal = false,
                   .seqs = {{40, 72}}},
                  det);
  }
}

TEST(FlashAttentionTest, BackwardLongRows) {
  CheckBackward({.heads = 1, .seqs = {{200, 200}}}, false);
  CheckBackward({.heads = 1, .causal = false, .seqs = {{64, 200}}}, true);
}

TEST(FlashAttentionTest, BackwardUnequalLengthsAndVarlen) {
  CheckBackward({.seqs = {{100, 40}}}, false);
  CheckBackward({.seqs = {{40, 100}}}, true);
  CheckBackward({.heads = 2, .kv_heads = 1, .seqs = {{1, 1}, {5, 5}, {66, 66}, {3, 9}}}, false, 2);
  CheckBackward({.head_dim = 128, .seqs = {{20, 20}, {1, 1}}, .heads_major = false}, true);
}

TEST(FlashAttentionTest, DeterministicBackwardIsBitIdenticalAcrossSchedules) {
  const Case c{.heads = 2, .kv_heads = 1, .seqs = {{70, 70}}};
  std::vector<double> first;
  for (const Schedule& schedule : Schedules(2)) {
    emu::ScopedOptions scoped(schedule.options);
    Problem pr(c);
    ASSERT_TRUE(pr.Forward().ok());
    ASSERT_TRUE(pr.Backward(true).ok());
    std::vector<double> all = pr.gq.ToDoubles();
    for (double x : pr.gk.ToDoubles()) all.push_back(x);
    if (first.empty()) {
      first = all;
    } else {
      EXPECT_EQ(all, first) << schedule.Name();
    }
  }
}

// ---- SIMT kernels (f32, f64, other head dims, unaligned layouts).

TEST(SimtAttentionTest, ForwardAndBackward) {
  for (DType dt : {DType::kF32, DType::kF64, DType::kBF16}) {
    const Case c{.dtype = dt,
                 .heads = 4,
                 .kv_heads = 2,
                 .head_dim = 40,
                 .seqs = {{9, 13}},
                 .kernel = Kernel::kSimt};
    CheckForward(c);
    CheckBackward(c, true);
  }
  CheckForward({.dtype = DType::kF32,
                .head_dim = 72,
                .causal = false,
                .seqs = {{3, 5}, {6, 2}, {1, 1}},
                .kernel = Kernel::kSimt});
  CheckBackward(
      {.dtype = DType::kF64, .head_dim = 8, .seqs = {{4, 7}, {5, 3}}, .kernel = Kernel::kSimt},
      true);
}

// ---- Public launchers: the dispatch and argument checks.

TEST(AttentionLauncherTest, DispatchesByDtypeHeadDimAndAlignment) {
  Problem flash(Case{.seqs = {{8, 8}}});
  EXPECT_TRUE(attn::FlashEligible(flash.p));
  Problem e40(Case{.head_dim = 40, .seqs = {{8, 8}}});
  EXPECT_FALSE(attn::FlashEligible(e40.p));
  Problem f32(Case{.dtype = DType::kF32, .seqs = {{8, 8}}});
  EXPECT_FALSE(attn::FlashEligible(f32.p));
  Problem odd(Case{.seqs = {{8, 8}}});
  odd.p.q_strides.token += 1;
  EXPECT_FALSE(attn::FlashEligible(odd.p));
  // Both paths through the public launcher agree with the reference.
  for (Problem* pr : {&flash, &e40}) {
    ASSERT_TRUE(LaunchAttentionForward(pr->p, nullptr).ok());
    std::vector<double> out, lse;
    reference::AttentionForward(pr->shape, pr->Dense(pr->q), pr->k.ToDoubles(), pr->v.ToDoubles(),
                                &out, &lse);
    EXPECT_LE(RelativeError(pr->Dense(pr->out), out), AttentionTolerance(DType::kBF16));
  }
}

TEST(AttentionLauncherTest, RejectsBadArguments) {
  Problem pr(Case{.seqs = {{8, 8}}});
  AttentionProblem p = pr.p;
  p.dtype = DType::kI32;
  EXPECT_THAT(std::string(LaunchAttentionForward(p, nullptr).message()), HasSubstr("dtype i32"));
  p = pr.p;
  p.heads = 3;
  p.kv_heads = 2;
  EXPECT_THAT(std::string(LaunchAttentionForward(p, nullptr).message()),
              HasSubstr("not a multiple of kv_heads"));
  p = pr.p;
  const std::vector<int32_t> cu = {0, 8};
  p.cu_seqlens_q = cu.data();
  EXPECT_THAT(std::string(LaunchAttentionForward(p, nullptr).message()),
              HasSubstr("given together"));
  p = pr.p;
  p.head_dim = 300;
  EXPECT_THAT(std::string(LaunchAttentionForward(p, nullptr).message()), HasSubstr("> 256"));
  AttentionBackwardProblem b{.fwd = pr.p,
                             .gout = pr.dout.data(),
                             .gq = pr.gq.data(),
                             .gk = pr.gk.data(),
                             .gv = pr.gv.data()};
  EXPECT_THAT(std::string(LaunchAttentionBackward(b, nullptr).message()),
              HasSubstr("workspace is null"));
}

}  // namespace
}  // namespace loom::cuda_emu
