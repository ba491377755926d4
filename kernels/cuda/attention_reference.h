// Plain host reference of the attention launchers (attention.h): softmax
// attention in double with the same masking rules (varlen sequences,
// bottom-right aligned causal masks, grouped-query heads), forward and
// backward.
#ifndef LOOM_KERNELS_CUDA_ATTENTION_REFERENCE_H_
#define LOOM_KERNELS_CUDA_ATTENTION_REFERENCE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace loom::reference {

// Dense [B, T, H, E] (q, out, dout), [B, S, G, E] (k, v); lse [B, H, T].
// seqs: per batch row, the (q_begin, q_len, k_begin, k_len) sequences in it.
struct AttentionShape {
  int64_t batch, seqlen_q, seqlen_k, heads, kv_heads, head_dim;
  bool causal;
  double scale;
  struct Seq {
    int64_t b, q_begin, q_len, k_begin, k_len;
  };
  std::vector<Seq> seqs;
  int64_t Q(int64_t b, int64_t t, int64_t h, int64_t e) const {
    return ((b * seqlen_q + t) * heads + h) * head_dim + e;
  }
  int64_t K(int64_t b, int64_t s, int64_t g, int64_t e) const {
    return ((b * seqlen_k + s) * kv_heads + g) * head_dim + e;
  }
  bool Visible(const Seq& s, int64_t i, int64_t j) const {
    return j < s.k_len && (!causal || j <= i + s.k_len - s.q_len);
  }
};

struct AttentionGrads {
  std::vector<double> dq, dk, dv;
};

inline void AttentionForward(const AttentionShape& a, const std::vector<double>& q,
                             const std::vector<double>& k, const std::vector<double>& v,
                             std::vector<double>* out, std::vector<double>* lse) {
  out->assign(size_t(a.batch * a.seqlen_q * a.heads * a.head_dim), 0.0);
  lse->assign(size_t(a.batch * a.heads * a.seqlen_q), -std::numeric_limits<double>::infinity());
  const int64_t group = a.heads / a.kv_heads;
  for (const auto& s : a.seqs) {
    for (int64_t h = 0; h < a.heads; ++h) {
      for (int64_t i = 0; i < s.q_len; ++i) {
        std::vector<double> sc(size_t(s.k_len), -std::numeric_limits<double>::infinity());
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < s.k_len; ++j) {
          if (!a.Visible(s, i, j)) continue;
          double d = 0;
          for (int64_t e = 0; e < a.head_dim; ++e) {
            d += q[size_t(a.Q(s.b, s.q_begin + i, h, e))] *
                 k[size_t(a.K(s.b, s.k_begin + j, h / group, e))];
          }
          sc[size_t(j)] = d * a.scale;
          mx = std::max(mx, sc[size_t(j)]);
        }
        if (mx == -std::numeric_limits<double>::infinity()) continue;  // sees nothing
        double sum = 0;
        for (double x : sc) sum += std::exp(x - mx);
        (*lse)[size_t((s.b * a.heads + h) * a.seqlen_q + s.q_begin + i)] = mx + std::log(sum);
        for (int64_t j = 0; j < s.k_len; ++j) {
          const double p = std::exp(sc[size_t(j)] - mx) / sum;
          for (int64_t e = 0; e < a.head_dim; ++e) {
            (*out)[size_t(a.Q(s.b, s.q_begin + i, h, e))] +=
                p * v[size_t(a.K(s.b, s.k_begin + j, h / group, e))];
          }
        }
      }
    }
  }
}

inline AttentionGrads AttentionBackward(const AttentionShape& a, const std::vector<double>& q,
                                        const std::vector<double>& k, const std::vector<double>& v,
                                        const std::vector<double>& dout) {
  AttentionGrads g{std::vector<double>(q.size(), 0.0), std::vector<double>(k.size(), 0.0),
                   std::vector<double>(v.size(), 0.0)};
  std::vector<double> out, lse;
  AttentionForward(a, q, k, v, &out, &lse);
  const int64_t group = a.heads / a.kv_heads;
  for (const auto& s : a.seqs) {
    for (int64_t h = 0; h < a.heads; ++h) {
      const int64_t kvh = h / group;
      for (int64_t i = 0; i < s.q_len; ++i) {
        const int64_t ti = s.q_begin + i;
        const double l = lse[size_t((s.b * a.heads + h) * a.seqlen_q + ti)];
        if (std::isinf(l)) continue;
        double dsum = 0;  // rowsum(dO * O)
        for (int64_t e = 0; e < a.head_dim; ++e) {
          dsum += dout[size_t(a.Q(s.b, ti, h, e))] * out[size_t(a.Q(s.b, ti, h, e))];
        }
        for (int64_t j = 0; j < s.k_len; ++j) {
          if (!a.Visible(s, i, j)) continue;
          const int64_t tj = s.k_begin + j;
          double d = 0, dp = 0;
          for (int64_t e = 0; e < a.head_dim; ++e) {
            d += q[size_t(a.Q(s.b, ti, h, e))] * k[size_t(a.K(s.b, tj, kvh, e))];
            dp += dout[size_t(a.Q(s.b, ti, h, e))] * v[size_t(a.K(s.b, tj, kvh, e))];
          }
          const double p = std::exp(d * a.scale - l);
          const double ds = p * (dp - dsum);
          for (int64_t e = 0; e < a.head_dim; ++e) {
            g.dv[size_t(a.K(s.b, tj, kvh, e))] += p * dout[size_t(a.Q(s.b, ti, h, e))];
            g.dk[size_t(a.K(s.b, tj, kvh, e))] += a.scale * ds * q[size_t(a.Q(s.b, ti, h, e))];
            g.dq[size_t(a.Q(s.b, ti, h, e))] += a.scale * ds * k[size_t(a.K(s.b, tj, kvh, e))];
          }
        }
      }
    }
  }
  return g;
}

}  // namespace loom::reference

#endif  // LOOM_KERNELS_CUDA_ATTENTION_REFERENCE_H_
