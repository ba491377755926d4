// FlashAttention-2-style forward on tensor cores (bf16 / f16, E = 64 or 128).
//
// A block owns Br = 64 query rows of one head (4 warps x 16 rows); Q stays in
// registers as mma A fragments. K and V stream through two shared-memory
// buffers of Bc = 64 keys (cp.async for tile j + 1 overlaps the math of tile
// j). Per tile: S = Q K^T (K stored [key][e] is the [n][k] B operand), mask,
// online softmax in the exp2 domain (row max and sum over the quad of lanes
// holding a row), O = O * alpha + P V with P converted from S's C fragments
// straight into A fragments and V ([key][e] = [k][n]) loaded by ldmatrix.trans.
// Causal blocks stop at the last key their last query sees. The log-sum-exp
// (natural log) is saved for the backward and for merging partial results.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_internal.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE::attn {
namespace {

constexpr int kBr = 64, kBc = 64, kThreads = 128;

template <int kE>
constexpr size_t ForwardSmemBytes() {
  return size_t(kBr + 4 * kBc) * (kE + 8) * 2;  // Q, then K and V double-buffered
}

template <typename T, int kE, bool kCausal>
__global__ void __launch_bounds__(kThreads, 1) FlashForwardKernel(DeviceProblem p) {
  constexpr int kLd = kE + 8;  // 16 bytes of padding: conflict-free ldmatrix rows
  T* sq = DynamicShared<T>();
  T* sk = sq + kBr * kLd;      // [2][kBc][kLd]
  T* sv = sk + 2 * kBc * kLd;  // [2][kBc][kLd]
  const Seq s = ResolveSeq(p, int(blockIdx.z));
  const int64_t q0 = int64_t(blockIdx.x) * kBr;
  if (q0 >= s.q_len) return;  // the whole block: no barrier is left waiting
  const int h = int(blockIdx.y), kvh = h / (p.heads / p.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const T* qb = HeadBase<T>(p.q, p.qs, s.batch, s.q_begin, h);
  const T* kb = HeadBase<T>(p.k, p.ks, s.batch, s.k_begin, kvh);
  const T* vb = HeadBase<T>(p.v, p.vs, s.batch, s.k_begin, kvh);

  int64_t k_end = s.k_len;
  if (kCausal) k_end = min(k_end, min(q0 + kBr, s.q_len) + s.k_len - s.q_len);
  const int tiles = k_end > 0 ? int((k_end + kBc - 1) / kBc) : 0;

  LoadRows<kBr, kE, kLd, kThreads>(sq, qb, p.qs.token, q0, s.q_len);
  if (tiles > 0) {
    LoadRows<kBc, kE, kLd, kThreads>(sk, kb, p.ks.token, 0, s.k_len);
    LoadRows<kBc, kE, kLd, kThreads>(sv, vb, p.vs.token, 0, s.k_len);
  }
  CpAsyncCommit();

  uint32_t qf[kE / 16][4];
  float o[kE / 8][4];
  Zero(o);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const int64_t row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};

  for (int j = 0; j < tiles; ++j) {
    if (j + 1 < tiles) {
      const int b = (j + 1) % 2;
      LoadRows<kBc, kE, kLd, kThreads>(sk + b * kBc * kLd, kb, p.ks.token, (j + 1) * kBc, s.k_len);
      LoadRows<kBc, kE, kLd, kThreads>(sv + b * kBc * kLd, vb, p.vs.token, (j + 1) * kBc, s.k_len);
    }
    CpAsyncCommit();
    CpAsyncWait<1>();  // tile j (and Q) have landed
    __syncthreads();
    if (j == 0) LoadA<kE, kLd>(qf, sq, warp * 16);
    const T* tk = sk + (j % 2) * kBc * kLd;
    const T* tv = sv + (j % 2) * kBc * kLd;

    float sacc[kBc / 8][4];
    Zero(sacc);
    MmaBNk<T, kBc, kE, kLd>(sacc, qf, tk);

    // Mask and the tile's row maxima, in the log2 domain.
    float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t key = int64_t(j) * kBc + n * 8 + 2 * t + e % 2;
        float x = sacc[n][e] * p.scale_log2;
        if (!Visible(kCausal, s, row[e / 2], key)) x = -INFINITY;
        sacc[n][e] = x;
        tile_max[e / 2] = fmaxf(tile_max[e / 2], x);
      }
    }
    float alpha[2], base[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float m_new = fmaxf(m[r], QuadMax(tile_max[r]));
      base[r] = m_new == -INFINITY ? 0.0f : m_new;  // a row with nothing visible yet
      alpha[r] = exp2f(m[r] - base[r]);
      m[r] = m_new;
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int n = 0; n < kE / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[n][e] *= alpha[e / 2];
    }
    uint32_t pf[kBc / 16][4];
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pv = exp2f(sacc[n][e] - base[e / 2]);
        sacc[n][e] = pv;
        l[e / 2] += pv;
      }
    }
#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) CToA<T>(pf[kk], sacc[2 * kk], sacc[2 * kk + 1]);
    MmaBKn<T, kE, kBc, kLd>(o, pf, tv);
    __syncthreads();  // every warp is done with buffer j % 2 before it is refilled
  }
  CpAsyncWait<0>();

  // Normalize, write O and the log-sum-exp (natural log).
  T* ob = HeadBaseMut<T>(p.out, p.os, s.batch, s.q_begin, h);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float sum = QuadSum(l[r]);
    if (row[r] >= s.q_len) continue;
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    T* orow = ob + row[r] * p.os.token;
#pragma unroll
    for (int n = 0; n < kE / 8; ++n) {
      const uint32_t v = PackPair<T>(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
      StorePair(orow + n * 8 + 2 * t, v);
    }
    if (t == 0) {
      static_cast<float*>(p.lse)[(s.batch * p.heads + h) * p.seqlen_q + s.q_begin + row[r]] =
          sum > 0.0f ? (m[r] + log2f(sum)) * kLn2 : -INFINITY;
    }
  }
}

template <typename T, int kE, bool kCausal>
absl::Status Run(const AttentionProblem& prob, const DeviceProblem& p, cudaStream_t stream) {
  constexpr auto kKernel = &FlashForwardKernel<T, kE, kCausal>;
  constexpr size_t kSmem = ForwardSmemBytes<kE>();
  LOOM_RETURN_IF_ERROR(SetMaxDynamicSharedMemory<kKernel>(kSmem));
  const int64_t q_rows = prob.cu_seqlens_q ? prob.max_seqlen_q : prob.seqlen_q;
  const int64_t z = prob.cu_seqlens_q ? prob.num_seqs : prob.batch;
  const LaunchConfig config{
      .grid = dim3(unsigned((q_rows + kBr - 1) / kBr), unsigned(prob.heads), unsigned(z)),
      .block = dim3(kThreads),
      .dynamic_smem = kSmem,
      .stream = stream};
  return Launch<kKernel>(config, p);
}

template <typename T>
absl::Status DispatchHeadDim(const AttentionProblem& prob, const DeviceProblem& p,
                             cudaStream_t stream) {
  if (prob.head_dim == 64) {
    return prob.causal ? Run<T, 64, true>(prob, p, stream) : Run<T, 64, false>(prob, p, stream);
  }
  return prob.causal ? Run<T, 128, true>(prob, p, stream) : Run<T, 128, false>(prob, p, stream);
}

}  // namespace

absl::Status LaunchFlashForward(const AttentionProblem& prob, const DeviceProblem& p,
                                cudaStream_t stream) {
  if (prob.dtype == DType::kBF16) return DispatchHeadDim<__nv_bfloat16>(prob, p, stream);
  return DispatchHeadDim<__half>(prob, p, stream);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE::attn
