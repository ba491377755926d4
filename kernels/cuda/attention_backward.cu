// FlashAttention-2-style backward on tensor cores (bf16 / f16, E = 64 or 128).
//
//   1. Prep: D = rowsum(dO * O) per query row (f32), dQ accumulators zeroed.
//   2. dK/dV: a block owns Bc = 64 keys of one KV head (4 warps x 16 keys) and
//      walks every query tile of every query head of its group that can see
//      them. Per tile, with S^T = K Q^T recomputed and P^T = exp(S^T - lse):
//        dV  += P^T dO          dP^T = V dO^T       dS^T = P^T (dP^T - D)
//        dK  += dS^T Q          dQ   += dS K  (dS^T staged through shared
//                                              memory, atomically added to f32
//                                              accumulators; step 3 casts them)
//      Looping over the whole group in one block keeps dK and dV in registers
//      with a single writer, so grouped-query attention needs no atomics there.
//   Deterministic mode replaces the dQ atomics of step 2 by a separate kernel
//   that owns Br = 64 query rows and walks the key tiles (recomputing S and
//   dP): every dQ element then has one writer and a fixed summation order.
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_internal.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE::attn {
namespace {

constexpr int kBc = 64, kThreads = 128;

// Query rows per tile of the dK/dV kernel: fewer at E = 128 so that dK, dV,
// S^T and dP^T all stay in registers.
template <int kE>
constexpr int DkDvBr() {
  return kE == 64 ? 64 : 32;
}

template <int kE>
constexpr size_t DkDvSmemBytes() {
  constexpr int kBr = DkDvBr<kE>(), kLd = kE + 8;
  return size_t(2 * kBc * kLd + 2 * 2 * kBr * kLd + kBc * (kBr + 8)) * 2 + 2 * 2 * kBr * 4;
}

// ---- 1. Prep: one warp per query row.
template <typename T, int kE>
__global__ void __launch_bounds__(kThreads) PrepKernel(DeviceProblem p, bool zero_dq) {
  const Seq s = ResolveSeq(p, int(blockIdx.z));
  const int64_t i = int64_t(blockIdx.x) * 4 + threadIdx.x / 32;
  if (i >= s.q_len) return;
  const int h = int(blockIdx.y), lane = threadIdx.x % 32;
  const T* go = HeadBase<T>(p.gout, p.gos, s.batch, s.q_begin + i, h);
  const T* o = HeadBase<T>(p.out, p.os, s.batch, s.q_begin + i, h);
  float d = 0.0f;
#pragma unroll
  for (int e = lane; e < kE; e += 32) d += ToFloat(go[e]) * ToFloat(o[e]);
#pragma unroll
  for (int m = 16; m > 0; m /= 2) d += __shfl_xor_sync(0xFFFFFFFFu, d, m);
  const int64_t row = (s.batch * p.heads + h) * p.seqlen_q + s.q_begin + i;
  if (lane == 0) static_cast<float*>(p.dsum)[row] = d;
  if (zero_dq) {
    float* acc = p.dq_accum + ((s.batch * p.seqlen_q + s.q_begin + i) * p.heads + h) * kE;
    for (int e = lane; e < kE; e += 32) acc[e] = 0.0f;
  }
}

// lse and D of query rows [row0, row0 + n) into smem (lse pre-scaled to log2).
__device__ __forceinline__ void LoadRowStats(float* s_lse, float* s_d, const DeviceProblem& p,
                                             const Seq& s, int h, int64_t row0, int n) {
  const float* lse = static_cast<const float*>(p.lse);
  const float* dsum = static_cast<const float*>(p.dsum);
  const int64_t base = (s.batch * p.heads + h) * p.seqlen_q + s.q_begin;
  for (int r = threadIdx.x; r < n; r += kThreads) {
    const int64_t i = row0 + r;
    const bool valid = i < s.q_len;
    s_lse[r] = valid ? lse[base + i] * kLog2e : INFINITY;  // P = 0 for padding rows
    s_d[r] = valid ? dsum[base + i] : 0.0f;
  }
}

// ---- 2. dK / dV (and dQ by atomics unless kDeterministic).
template <typename T, int kE, bool kCausal, bool kAtomicDq>
__global__ void __launch_bounds__(kThreads, 1) DkDvKernel(DeviceProblem p) {
  constexpr int kBr = DkDvBr<kE>(), kLd = kE + 8, kLdS = kBr + 8;
  T* sk = DynamicShared<T>();     // [kBc][kLd]
  T* sv = sk + kBc * kLd;         // [kBc][kLd]
  T* sq = sv + kBc * kLd;         // [2][kBr][kLd]
  T* sdo = sq + 2 * kBr * kLd;    // [2][kBr][kLd]
  T* sdst = sdo + 2 * kBr * kLd;  // [kBc][kLdS]: dS^T of the current tile
  float* s_lse = reinterpret_cast<float*>(sdst + kBc * kLdS);  // [2][kBr]
  float* s_d = s_lse + 2 * kBr;                                // [2][kBr]

  const Seq s = ResolveSeq(p, int(blockIdx.z));
  const int64_t k0 = int64_t(blockIdx.x) * kBc;
  if (k0 >= s.k_len) return;
  const int kvh = int(blockIdx.y), group = p.heads / p.kv_heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  LoadRows<kBc, kE, kLd, kThreads>(sk, HeadBase<T>(p.k, p.ks, s.batch, s.k_begin, kvh), p.ks.token,
                                   k0, s.k_len);
  LoadRows<kBc, kE, kLd, kThreads>(sv, HeadBase<T>(p.v, p.vs, s.batch, s.k_begin, kvh), p.vs.token,
                                   k0, s.k_len);
  CpAsyncCommit();

  // The first query that sees key k0 (causal, bottom-right aligned).
  const int64_t i_first = kCausal ? max(int64_t(0), k0 - (s.k_len - s.q_len)) : 0;
  const int64_t tile0 = i_first / kBr;
  const int64_t tiles_per_head = s.q_len > 0 ? (s.q_len + kBr - 1) / kBr - tile0 : 0;
  const int64_t steps = tiles_per_head > 0 ? tiles_per_head * group : 0;
  auto load = [&](int64_t step) {
    const int h = kvh * group + int(step / tiles_per_head);
    const int64_t row0 = (tile0 + step % tiles_per_head) * kBr;
    const int b = int(step % 2);
    LoadRows<kBr, kE, kLd, kThreads>(sq + b * kBr * kLd,
                                     HeadBase<T>(p.q, p.qs, s.batch, s.q_begin, h), p.qs.token,
                                     row0, s.q_len);
    LoadRows<kBr, kE, kLd, kThreads>(sdo + b * kBr * kLd,
                                     HeadBase<T>(p.gout, p.gos, s.batch, s.q_begin, h), p.gos.token,
                                     row0, s.q_len);
    LoadRowStats(s_lse + b * kBr, s_d + b * kBr, p, s, h, row0, kBr);
  };
  if (steps > 0) load(0);
  CpAsyncCommit();

  float dk[kE / 8][4], dv[kE / 8][4];
  Zero(dk);
  Zero(dv);
  const int64_t key[2] = {k0 + warp * 16 + g, k0 + warp * 16 + g + 8};  // this thread's S^T rows

  for (int64_t step = 0; step < steps; ++step) {
    if (step + 1 < steps) load(step + 1);
    CpAsyncCommit();
    CpAsyncWait<1>();
    __syncthreads();
    const int b = int(step % 2);
    const int h = kvh * group + int(step / tiles_per_head);
    const int64_t row0 = (tile0 + step % tiles_per_head) * kBr;
    const T* tq = sq + b * kBr * kLd;
    const T* tdo = sdo + b * kBr * kLd;
    const float* lse = s_lse + b * kBr;
    const float* dsum = s_d + b * kBr;

    // S^T and dP^T for this warp's 16 keys x kBr queries.
    float st[kBr / 8][4], dpt[kBr / 8][4];
    Zero(st);
    Zero(dpt);
    MmaSmemABNk<T, kBr, kE, kLd, kLd>(st, sk + warp * 16 * kLd, tq);
    MmaSmemABNk<T, kBr, kE, kLd, kLd>(dpt, sv + warp * 16 * kLd, tdo);
#pragma unroll
    for (int n = 0; n < kBr / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int c = n * 8 + 2 * t + e % 2;  // query within the tile
        const int64_t i = row0 + c;
        const bool vis = i < s.q_len && Visible(kCausal, s, i, key[e / 2]);
        const float pv = vis ? exp2f(st[n][e] * p.scale_log2 - lse[c]) : 0.0f;
        st[n][e] = pv;                           // P^T
        dpt[n][e] = pv * (dpt[n][e] - dsum[c]);  // dS^T
      }
    }
    uint32_t pa[kBr / 16][4], dsa[kBr / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBr / 16; ++kk) {
      CToA<T>(pa[kk], st[2 * kk], st[2 * kk + 1]);
      CToA<T>(dsa[kk], dpt[2 * kk], dpt[2 * kk + 1]);
    }
    MmaBKn<T, kE, kBr, kLd>(dv, pa, tdo);
    MmaBKn<T, kE, kBr, kLd>(dk, dsa, tq);

    if constexpr (kAtomicDq) {
      // dS^T (rounded as it entered dK) to shared memory, then dQ = dS K.
#pragma unroll
      for (int kk = 0; kk < kBr / 16; ++kk) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          // A fragment register r: rows g (+8 for odd r), columns 2t (+8 for r >= 2).
          const int krow = warp * 16 + g + 8 * (r & 1), qcol = kk * 16 + 2 * t + 8 * (r >> 1);
          StorePair(sdst + krow * kLdS + qcol, dsa[kk][r]);
        }
      }
      __syncthreads();
      // Warp w: all kBr queries x head-dim columns [w E/4, (w + 1) E/4).
      constexpr int kCols = kE / 4;
      const int col0 = warp * kCols;
#pragma unroll
      for (int mt = 0; mt < kBr / 16; ++mt) {
        uint32_t da[kBc / 16][4];
        LoadATrans<kBc, kLdS>(da, sdst, mt * 16);
        float dq[kCols / 8][4];
        Zero(dq);
        MmaBKn<T, kCols, kBc, kLd>(dq, da, sk + col0);
#pragma unroll
        for (int n = 0; n < kCols / 8; ++n) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int64_t i = row0 + mt * 16 + g + 8 * (e / 2);
            if (i < s.q_len) {
              const int col = col0 + n * 8 + 2 * t + e % 2;
              atomicAdd(
                  p.dq_accum + ((s.batch * p.seqlen_q + s.q_begin + i) * p.heads + h) * kE + col,
                  dq[n][e] * float(p.scale));
            }
          }
        }
      }
    }
    __syncthreads();  // buffers b and sdst are free for the next tile
  }
  CpAsyncWait<0>();

  // dK = scale * dS^T Q, dV = P^T dO, for this warp's 16 keys.
  T* gkb = HeadBaseMut<T>(p.gk, p.gks, s.batch, s.k_begin, kvh);
  T* gvb = HeadBaseMut<T>(p.gv, p.gvs, s.batch, s.k_begin, kvh);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (key[r] >= s.k_len) continue;
#pragma unroll
    for (int n = 0; n < kE / 8; ++n) {
      const uint32_t kv =
          PackPair<T>(dk[n][2 * r] * float(p.scale), dk[n][2 * r + 1] * float(p.scale));
      const uint32_t vv = PackPair<T>(dv[n][2 * r], dv[n][2 * r + 1]);
      StorePair(gkb + key[r] * p.gks.token + n * 8 + 2 * t, kv);
      StorePair(gvb + key[r] * p.gvs.token + n * 8 + 2 * t, vv);
    }
  }
}

// ---- 3. dQ accumulators (f32) to gq's dtype and strides.
template <typename T, int kE>
__global__ void __launch_bounds__(kThreads) DqCastKernel(DeviceProblem p) {
  const Seq s = ResolveSeq(p, int(blockIdx.z));
  const int64_t i = int64_t(blockIdx.x) * 4 + threadIdx.x / 32;
  if (i >= s.q_len) return;
  const int h = int(blockIdx.y), lane = threadIdx.x % 32;
  const float* acc = p.dq_accum + ((s.batch * p.seqlen_q + s.q_begin + i) * p.heads + h) * kE;
  T* gq = HeadBaseMut<T>(p.gq, p.gqs, s.batch, s.q_begin + i, h);
  for (int e = 2 * lane; e < kE; e += 64) {
    const uint32_t v = PackPair<T>(acc[e], acc[e + 1]);
    StorePair(gq + e, v);
  }
}

// ---- Deterministic dQ: a block owns 64 query rows and walks the key tiles.
template <int kE>
constexpr size_t DqSmemBytes() {
  return size_t(2 * 64 + 4 * kBc) * (kE + 8) * 2;
}

template <typename T, int kE, bool kCausal>
__global__ void __launch_bounds__(kThreads, 1) DqKernel(DeviceProblem p) {
  constexpr int kBr = 64, kLd = kE + 8;
  T* sq = DynamicShared<T>();  // [kBr][kLd]
  T* sdo = sq + kBr * kLd;     // [kBr][kLd]
  T* sk = sdo + kBr * kLd;     // [2][kBc][kLd]
  T* sv = sk + 2 * kBc * kLd;  // [2][kBc][kLd]
  const Seq s = ResolveSeq(p, int(blockIdx.z));
  const int64_t q0 = int64_t(blockIdx.x) * kBr;
  if (q0 >= s.q_len) return;
  const int h = int(blockIdx.y), kvh = h / (p.heads / p.kv_heads);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const T* kb = HeadBase<T>(p.k, p.ks, s.batch, s.k_begin, kvh);
  const T* vb = HeadBase<T>(p.v, p.vs, s.batch, s.k_begin, kvh);
  int64_t k_end = s.k_len;
  if (kCausal) k_end = min(k_end, min(q0 + kBr, s.q_len) + s.k_len - s.q_len);
  const int tiles = k_end > 0 ? int((k_end + kBc - 1) / kBc) : 0;

  LoadRows<kBr, kE, kLd, kThreads>(sq, HeadBase<T>(p.q, p.qs, s.batch, s.q_begin, h), p.qs.token,
                                   q0, s.q_len);
  LoadRows<kBr, kE, kLd, kThreads>(sdo, HeadBase<T>(p.gout, p.gos, s.batch, s.q_begin, h),
                                   p.gos.token, q0, s.q_len);
  if (tiles > 0) {
    LoadRows<kBc, kE, kLd, kThreads>(sk, kb, p.ks.token, 0, s.k_len);
    LoadRows<kBc, kE, kLd, kThreads>(sv, vb, p.vs.token, 0, s.k_len);
  }
  CpAsyncCommit();

  const int64_t row[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};
  float lse[2], dsum[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t idx = (s.batch * p.heads + h) * p.seqlen_q + s.q_begin + row[r];
    const bool valid = row[r] < s.q_len;
    lse[r] = valid ? static_cast<const float*>(p.lse)[idx] * kLog2e : INFINITY;
    dsum[r] = valid ? static_cast<const float*>(p.dsum)[idx] : 0.0f;
  }
  float dq[kE / 8][4];
  Zero(dq);
  for (int j = 0; j < tiles; ++j) {
    if (j + 1 < tiles) {
      const int b = (j + 1) % 2;
      LoadRows<kBc, kE, kLd, kThreads>(sk + b * kBc * kLd, kb, p.ks.token, (j + 1) * kBc, s.k_len);
      LoadRows<kBc, kE, kLd, kThreads>(sv + b * kBc * kLd, vb, p.vs.token, (j + 1) * kBc, s.k_len);
    }
    CpAsyncCommit();
    CpAsyncWait<1>();
    __syncthreads();
    const T* tk = sk + (j % 2) * kBc * kLd;
    const T* tv = sv + (j % 2) * kBc * kLd;
    float sc[kBc / 8][4], dp[kBc / 8][4];
    Zero(sc);
    Zero(dp);
    MmaSmemABNk<T, kBc, kE, kLd, kLd>(sc, sq + warp * 16 * kLd, tk);
    MmaSmemABNk<T, kBc, kE, kLd, kLd>(dp, sdo + warp * 16 * kLd, tv);
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t key = int64_t(j) * kBc + n * 8 + 2 * t + e % 2;
        const int r = e / 2;
        const bool vis = row[r] < s.q_len && Visible(kCausal, s, row[r], key);
        const float pv = vis ? exp2f(sc[n][e] * p.scale_log2 - lse[r]) : 0.0f;
        dp[n][e] = pv * (dp[n][e] - dsum[r]);  // dS
      }
    }
    uint32_t dsa[kBc / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) CToA<T>(dsa[kk], dp[2 * kk], dp[2 * kk + 1]);
    MmaBKn<T, kE, kBc, kLd>(dq, dsa, tk);
    __syncthreads();
  }
  CpAsyncWait<0>();
  T* gqb = HeadBaseMut<T>(p.gq, p.gqs, s.batch, s.q_begin, h);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (row[r] >= s.q_len) continue;
#pragma unroll
    for (int n = 0; n < kE / 8; ++n) {
      const uint32_t v =
          PackPair<T>(dq[n][2 * r] * float(p.scale), dq[n][2 * r + 1] * float(p.scale));
      StorePair(gqb + row[r] * p.gqs.token + n * 8 + 2 * t, v);
    }
  }
}

template <typename T, int kE, bool kCausal>
absl::Status Run(const AttentionBackwardProblem& b, const DeviceProblem& p, cudaStream_t stream) {
  const AttentionProblem& prob = b.fwd;
  const bool varlen = prob.cu_seqlens_q != nullptr;
  const int64_t q_rows = varlen ? prob.max_seqlen_q : prob.seqlen_q;
  const int64_t k_rows = varlen ? prob.max_seqlen_k : prob.seqlen_k;
  const unsigned z = unsigned(varlen ? prob.num_seqs : prob.batch);
  const LaunchConfig rows{.grid = dim3(unsigned((q_rows + 3) / 4), unsigned(prob.heads), z),
                          .block = dim3(kThreads),
                          .stream = stream};
  LOOM_RETURN_IF_ERROR((Launch<&PrepKernel<T, kE>>(rows, p, !b.deterministic)));

  constexpr size_t kDkDvSmem = DkDvSmemBytes<kE>();
  const LaunchConfig keys{
      .grid = dim3(unsigned((k_rows + kBc - 1) / kBc), unsigned(prob.kv_heads), z),
      .block = dim3(kThreads),
      .dynamic_smem = kDkDvSmem,
      .stream = stream};
  if (!b.deterministic) {
    constexpr auto kKernel = &DkDvKernel<T, kE, kCausal, true>;
    LOOM_RETURN_IF_ERROR(SetMaxDynamicSharedMemory<kKernel>(kDkDvSmem));
    LOOM_RETURN_IF_ERROR(Launch<kKernel>(keys, p));
    return Launch<&DqCastKernel<T, kE>>(rows, p);
  }
  constexpr auto kKernel = &DkDvKernel<T, kE, kCausal, false>;
  LOOM_RETURN_IF_ERROR(SetMaxDynamicSharedMemory<kKernel>(kDkDvSmem));
  LOOM_RETURN_IF_ERROR(Launch<kKernel>(keys, p));
  constexpr auto kDq = &DqKernel<T, kE, kCausal>;
  constexpr size_t kDqSmem = DqSmemBytes<kE>();
  LOOM_RETURN_IF_ERROR(SetMaxDynamicSharedMemory<kDq>(kDqSmem));
  const LaunchConfig queries{.grid = dim3(unsigned((q_rows + 63) / 64), unsigned(prob.heads), z),
                             .block = dim3(kThreads),
                             .dynamic_smem = kDqSmem,
                             .stream = stream};
  return Launch<kDq>(queries, p);
}

template <typename T>
absl::Status DispatchHeadDim(const AttentionBackwardProblem& b, const DeviceProblem& p,
                             cudaStream_t stream) {
  const bool causal = b.fwd.causal;
  if (b.fwd.head_dim == 64) {
    return causal ? Run<T, 64, true>(b, p, stream) : Run<T, 64, false>(b, p, stream);
  }
  return causal ? Run<T, 128, true>(b, p, stream) : Run<T, 128, false>(b, p, stream);
}

}  // namespace

absl::Status LaunchFlashBackward(const AttentionBackwardProblem& b, const DeviceProblem& p,
                                 cudaStream_t stream) {
  if (b.fwd.dtype == DType::kBF16) return DispatchHeadDim<__nv_bfloat16>(b, p, stream);
  return DispatchHeadDim<__half>(b, p, stream);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE::attn
