// Attention without tensor cores, for what the FlashAttention-2 kernels do
// not take: f32 and f64 inputs, head dims other than 64 and 128 (up to 256),
// unaligned layouts. One warp per query row (forward, dQ) or key row (dK, dV):
// lanes split the head dim, dot products are warp reductions, and the softmax
// is online in the forward and recomputed from the saved log-sum-exp in the
// backward. Every output element has one writer, so results are
// deterministic; this is a correctness path, not a fast one.
#include <type_traits>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_internal.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE::attn {
namespace {

constexpr int kWarps = 4, kThreads = kWarps * 32, kMaxPerLane = 8;  // head_dim <= 256

template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
__device__ __forceinline__ Acc<T> Load(const T* p) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    return *p;
  } else {
    return ToFloat(*p);
  }
}
template <typename T>
__device__ __forceinline__ void Store(T* p, Acc<T> v) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    *p = v;
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    *p = __float2bfloat16_rn(v);
  } else {
    *p = __float2half_rn(v);
  }
}

template <typename A>
__device__ __forceinline__ A WarpSum(A x) {
#pragma unroll
  for (int m = 16; m > 0; m /= 2) x += __shfl_xor_sync(0xFFFFFFFFu, x, m);
  return x;
}

template <typename A>
__device__ __forceinline__ A Exp(A x) {
  if constexpr (std::is_same_v<A, double>) {
    return exp(x);
  } else {
    return expf(x);
  }
}
template <typename A>
__device__ __forceinline__ A Log(A x) {
  if constexpr (std::is_same_v<A, double>) {
    return log(x);
  } else {
    return logf(x);
  }
}

// This lane's share of a row of E elements: e = lane + 32 c.
template <typename T>
__device__ __forceinline__ void LoadRow(Acc<T> (&r)[kMaxPerLane], const T* row, int E) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    const int e = lane + 32 * c;
    r[c] = e < E ? Load(row + e) : Acc<T>(0);
  }
}

template <typename T>
__device__ __forceinline__ Acc<T> Dot(const Acc<T> (&r)[kMaxPerLane], const T* row, int E) {
  const int lane = threadIdx.x % 32;
  Acc<T> s = 0;
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    const int e = lane + 32 * c;
    if (e < E) s += r[c] * Load(row + e);
  }
  return WarpSum(s);
}

template <typename T>
__device__ __forceinline__ Acc<T>* LseAt(void* lse, const DeviceProblem& p, const Seq& s, int h,
                                         int64_t i) {
  return static_cast<Acc<T>*>(lse) + (s.batch * p.heads + h) * p.seqlen_q + s.q_begin + i;
}

template <typename T, bool kCausal>
__global__ void __launch_bounds__(kThreads) SimtForwardKernel(DeviceProblem p, int E) {
  using A = Acc<T>;
  const Seq s = ResolveSeq(p, int(blockIdx.z));
  const int64_t i = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (i >= s.q_len) return;  // a whole warp; no block barriers here
  const int h = int(blockIdx.y), kvh = h / (p.heads / p.kv_heads), lane = threadIdx.x % 32;
  const T* kb = HeadBase<T>(p.k, p.ks, s.batch, s.k_begin, kvh);
  const T* vb = HeadBase<T>(p.v, p.vs, s.batch, s.k_begin, kvh);
  A q[kMaxPerLane], o[kMaxPerLane] = {};
  LoadRow(q, HeadBase<T>(p.q, p.qs, s.batch, s.q_begin + i, h), E);
  A m = -INFINITY, l = 0;
  const int64_t k_end = kCausal ? min(s.k_len, i + s.k_len - s.q_len + 1) : s.k_len;
  for (int64_t j = 0; j < k_end; ++j) {
    const A x = Dot<T>(q, kb + j * p.ks.token, E) * A(p.scale);
    const A m_new = x > m ? x : m;
    const A alpha = Exp(m - m_new), pj = Exp(x - m_new);
    l = l * alpha + pj;
    const T* vr = vb + j * p.vs.token;
#pragma unroll
    for (int c = 0; c < kMaxPerLane; ++c) {
      const int e = lane + 32 * c;
      o[c] = o[c] * alpha + (e < E ? pj * Load(vr + e) : A(0));
    }
    m = m_new;
  }
  T* orow = HeadBaseMut<T>(p.out, p.os, s.batch, s.q_begin + i, h);
  const A inv = l > 0 ? A(1) / l : A(0);
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    const int e = lane + 32 * c;
    if (e < E) Store(orow + e, o[c] * inv);
  }
  if (lane == 0) *LseAt<T>(p.lse, p, s, h, i) = l > 0 ? m + Log(l) : A(-INFINITY);
}

// D[i] = rowsum(dO[i] * O[i]) into p.dsum.
template <typename T>
__global__ void __launch_bounds__(kThreads) SimtRowDotKernel(DeviceProblem p, int E) {
  using A = Acc<T>;
  const Seq s = ResolveSeq(p, int(blockIdx.z));
  const int64_t i = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (i >= s.q_len) return;
  const int h = int(blockIdx.y);
  A go[kMaxPerLane];
  LoadRow(go, HeadBase<T>(p.gout, p.gos, s.batch, s.q_begin + i, h), E);
  const A d = Dot<T>(go, HeadBase<T>(p.out, p.os, s.batch, s.q_begin + i, h), E);
  if (threadIdx.x % 32 == 0) *LseAt<T>(p.dsum, p, s, h, i) = d;
}

template <typename T, bool kCausal>
__global__ void __launch_bounds__(kThreads) SimtDqKernel(DeviceProblem p, int E) {
  using A = Acc<T>;
  const Seq s = ResolveSeq(p, int(blockIdx.z));
  const int64_t i = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (i >= s.q_len) return;
  const int h = int(blockIdx.y), kvh = h / (p.heads / p.kv_heads), lane = threadIdx.x % 32;
  const T* kb = HeadBase<T>(p.k, p.ks, s.batch, s.k_begin, kvh);
  const T* vb = HeadBase<T>(p.v, p.vs, s.batch, s.k_begin, kvh);
  A q[kMaxPerLane], go[kMaxPerLane], dq[kMaxPerLane] = {};
  LoadRow(q, HeadBase<T>(p.q, p.qs, s.batch, s.q_begin + i, h), E);
  LoadRow(go, HeadBase<T>(p.gout, p.gos, s.batch, s.q_begin + i, h), E);
  const A lse = *LseAt<T>(p.lse, p, s, h, i), d = *LseAt<T>(p.dsum, p, s, h, i);
  const int64_t k_end = kCausal ? min(s.k_len, i + s.k_len - s.q_len + 1) : s.k_len;
  for (int64_t j = 0; j < k_end; ++j) {
    const T* kr = kb + j * p.ks.token;
    const A pj = Exp(Dot<T>(q, kr, E) * A(p.scale) - lse);
    const A ds = pj * (Dot<T>(go, vb + j * p.vs.token, E) - d);
#pragma unroll
    for (int c = 0; c < kMaxPerLane; ++c) {
      const int e = lane + 32 * c;
      if (e < E) dq[c] += ds * Load(kr + e);
    }
  }
  T* out = HeadBaseMut<T>(p.gq, p.gqs, s.batch, s.q_begin + i, h);
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    const int e = lane + 32 * c;
    if (e < E) Store(out + e, dq[c] * A(p.scale));
  }
}

template <typename T, bool kCausal>
__global__ void __launch_bounds__(kThreads) SimtDkDvKernel(DeviceProblem p, int E) {
  using A = Acc<T>;
  const Seq s = ResolveSeq(p, int(blockIdx.z));
  const int64_t j = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (j >= s.k_len) return;
  const int kvh = int(blockIdx.y), group = p.heads / p.kv_heads, lane = threadIdx.x % 32;
  A k[kMaxPerLane], v[kMaxPerLane], dk[kMaxPerLane] = {}, dv[kMaxPerLane] = {};
  LoadRow(k, HeadBase<T>(p.k, p.ks, s.batch, s.k_begin + j, kvh), E);
  LoadRow(v, HeadBase<T>(p.v, p.vs, s.batch, s.k_begin + j, kvh), E);
  // Queries that see key j: i >= j - (k_len - q_len) under causal masking.
  const int64_t i0 = kCausal ? max(int64_t(0), j - (s.k_len - s.q_len)) : 0;
  for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
    for (int64_t i = i0; i < s.q_len; ++i) {
      const T* qr = HeadBase<T>(p.q, p.qs, s.batch, s.q_begin + i, h);
      const T* gor = HeadBase<T>(p.gout, p.gos, s.batch, s.q_begin + i, h);
      const A pij = Exp(Dot<T>(k, qr, E) * A(p.scale) - *LseAt<T>(p.lse, p, s, h, i));
      const A ds = pij * (Dot<T>(v, gor, E) - *LseAt<T>(p.dsum, p, s, h, i));
#pragma unroll
      for (int c = 0; c < kMaxPerLane; ++c) {
        const int e = lane + 32 * c;
        if (e < E) {
          dv[c] += pij * Load(gor + e);
          dk[c] += ds * Load(qr + e);
        }
      }
    }
  }
  T* gk = HeadBaseMut<T>(p.gk, p.gks, s.batch, s.k_begin + j, kvh);
  T* gv = HeadBaseMut<T>(p.gv, p.gvs, s.batch, s.k_begin + j, kvh);
#pragma unroll
  for (int c = 0; c < kMaxPerLane; ++c) {
    const int e = lane + 32 * c;
    if (e < E) {
      Store(gk + e, dk[c] * A(p.scale));
      Store(gv + e, dv[c]);
    }
  }
}

dim3 Grid(int64_t rows, int64_t heads, int64_t z) {
  return dim3(unsigned((rows + kWarps - 1) / kWarps), unsigned(heads), unsigned(z));
}

template <typename T>
absl::Status Forward(const AttentionProblem& prob, const DeviceProblem& p, cudaStream_t stream) {
  const int64_t rows = prob.cu_seqlens_q ? prob.max_seqlen_q : prob.seqlen_q;
  const int64_t z = prob.cu_seqlens_q ? prob.num_seqs : prob.batch;
  const LaunchConfig c{
      .grid = Grid(rows, prob.heads, z), .block = dim3(kThreads), .stream = stream};
  const int E = int(prob.head_dim);
  return prob.causal ? Launch<&SimtForwardKernel<T, true>>(c, p, E)
                     : Launch<&SimtForwardKernel<T, false>>(c, p, E);
}

template <typename T>
absl::Status Backward(const AttentionProblem& prob, const DeviceProblem& p, cudaStream_t stream) {
  const bool varlen = prob.cu_seqlens_q != nullptr;
  const int64_t q_rows = varlen ? prob.max_seqlen_q : prob.seqlen_q;
  const int64_t k_rows = varlen ? prob.max_seqlen_k : prob.seqlen_k;
  const int64_t z = varlen ? prob.num_seqs : prob.batch;
  const int E = int(prob.head_dim);
  const LaunchConfig q_config{
      .grid = Grid(q_rows, prob.heads, z), .block = dim3(kThreads), .stream = stream};
  const LaunchConfig k_config{
      .grid = Grid(k_rows, prob.kv_heads, z), .block = dim3(kThreads), .stream = stream};
  LOOM_RETURN_IF_ERROR(Launch<&SimtRowDotKernel<T>>(q_config, p, E));
  if (prob.causal) {
    LOOM_RETURN_IF_ERROR((Launch<&SimtDqKernel<T, true>>(q_config, p, E)));
    return Launch<&SimtDkDvKernel<T, true>>(k_config, p, E);
  }
  LOOM_RETURN_IF_ERROR((Launch<&SimtDqKernel<T, false>>(q_config, p, E)));
  return Launch<&SimtDkDvKernel<T, false>>(k_config, p, E);
}

template <template <typename> class F, typename... Args>
absl::Status ByDType(DType dtype, Args&&... args) {
  switch (dtype) {
    case DType::kF64:
      return F<double>::Run(args...);
    case DType::kF32:
      return F<float>::Run(args...);
    case DType::kBF16:
      return F<__nv_bfloat16>::Run(args...);
    default:
      return F<__half>::Run(args...);
  }
}
template <typename T>
struct ForwardF {
  static absl::Status Run(const AttentionProblem& a, const DeviceProblem& p, cudaStream_t s) {
    return Forward<T>(a, p, s);
  }
};
template <typename T>
struct BackwardF {
  static absl::Status Run(const AttentionProblem& a, const DeviceProblem& p, cudaStream_t s) {
    return Backward<T>(a, p, s);
  }
};

}  // namespace

absl::Status LaunchSimtForward(const AttentionProblem& prob, const DeviceProblem& p,
                               cudaStream_t stream) {
  return ByDType<ForwardF>(prob.dtype, prob, p, stream);
}

absl::Status LaunchSimtBackward(const AttentionBackwardProblem& prob, const DeviceProblem& p,
                                cudaStream_t stream) {
  return ByDType<BackwardF>(prob.fwd.dtype, prob.fwd, p, stream);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE::attn
