// Rotary position embedding (see rope.h).
//
// Work item = (token, group of kHeadsPerThread heads, chunk of kVec pairs):
// the thread computes the chunk's cos/sin once and rotates both halves of that
// chunk in each head of its group. A warp covers consecutive chunks of one
// head row, so every 16-byte load and store is part of a fully used segment.
#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_numeric.h"
#include "kernels/cuda/rope.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65536;
constexpr int kHeadsPerThread = 4;

struct RopeGeometry {
  int64_t tokens;  // B * T
  int seqlen, heads, half, chunks, head_groups;
};

template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads)
    RopeKernel(const T* x, RopeStrides xs, T* out, RopeStrides os, const int64_t* positions,
               const compute_t<T>* inv_freq, RopeGeometry g, bool inverse) {
  using C = compute_t<T>;
  const int64_t per_token = int64_t(g.head_groups) * g.chunks;
  const int64_t items = g.tokens * per_token;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t item = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; item < items;
       item += stride) {
    const int64_t tok = item / per_token;
    const int rem = int(item - tok * per_token);
    const int group = rem / g.chunks;
    const int i0 = (rem - group * g.chunks) * kVec;
    const int64_t b = tok / g.seqlen, t = tok - b * g.seqlen;

    const C p = C(positions[tok]);
    C cs[kVec], sn[kVec];
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const C angle = MulRn(p, inv_freq[i0 + k]);
      cs[k] = RoundTo<T>(Cos(angle));
      const C s = RoundTo<T>(Sin(angle));
      sn[k] = inverse ? -s : s;
    }
    const T* xrow = x + b * xs.batch + t * xs.token;
    T* orow = out + b * os.batch + t * os.token;
    const int head_end = min(g.heads, (group + 1) * kHeadsPerThread);
    for (int h = group * kHeadsPerThread; h < head_end; ++h) {
      const T* xh = xrow + h * xs.head;
      T* oh = orow + h * os.head;
      const Vec<T, kVec> lo = LoadPack<kVec>(xh + i0);
      const Vec<T, kVec> hi = LoadPack<kVec>(xh + g.half + i0);
      Vec<T, kVec> out_lo, out_hi;
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        const C x1 = Load(lo.v[k]), x2 = Load(hi.v[k]);
        // rotate_half(x) = (-x2, x1); every product is rounded to T, as in HF's eager code.
        out_lo.v[k] = Store<T>(AddRn(RoundTo<T>(MulRn(x1, cs[k])), RoundTo<T>(MulRn(-x2, sn[k]))));
        out_hi.v[k] = Store<T>(AddRn(RoundTo<T>(MulRn(x2, cs[k])), RoundTo<T>(MulRn(x1, sn[k]))));
      }
      StorePack<kVec>(oh + i0, out_lo);
      StorePack<kVec>(oh + g.half + i0, out_hi);
    }
  }
}

template <typename T, int kVec>
absl::Status RopeWith(const RopeArgs& a, cudaStream_t stream) {
  using C = compute_t<T>;
  RopeGeometry g;
  g.tokens = a.batch * a.seqlen;
  g.seqlen = int(a.seqlen);
  g.heads = int(a.heads);
  g.half = int(a.head_dim / 2);
  g.chunks = g.half / kVec;
  g.head_groups = (g.heads + kHeadsPerThread - 1) / kHeadsPerThread;
  const int64_t items = g.tokens * g.head_groups * g.chunks;
  const int64_t blocks = std::min<int64_t>((items + kThreads - 1) / kThreads, kMaxBlocks);
  return Launch<&RopeKernel<T, kVec>>(
      {.grid = dim3(unsigned(blocks)), .block = dim3(kThreads), .stream = stream},
      static_cast<const T*>(a.x), a.x_strides, static_cast<T*>(a.out), a.out_strides, a.positions,
      static_cast<const C*>(a.inv_freq), g, a.inverse);
}

bool StridesOk(const RopeStrides& s) { return s.batch >= 0 && s.token >= 0 && s.head >= 0; }

}  // namespace

absl::Status LaunchRope(const RopeArgs& a, cudaStream_t stream) {
  constexpr const char* kOp = "Rope";
  if (a.batch < 0 || a.seqlen < 0 || a.heads < 0 || a.head_dim < 0) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": sizes [", a.batch, ", ", a.seqlen, ", ",
                                                   a.heads, ", ", a.head_dim, "] must be >= 0"));
  }
  if (a.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": head_dim ", a.head_dim, " must be even (pairs i, i + E/2)"));
  }
  if (a.seqlen > INT_MAX || a.heads > INT_MAX || a.head_dim > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat(kOp, ": seqlen, heads and head_dim must be < 2^31"));
  }
  if (a.batch == 0 || a.seqlen == 0 || a.heads == 0 || a.head_dim == 0) return absl::OkStatus();
  if (a.x == nullptr || a.out == nullptr || a.positions == nullptr || a.inv_freq == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        kOp, ": null pointer among x, out, positions, inv_freq (", a.x == nullptr ? "x " : "",
        a.out == nullptr ? "out " : "", a.positions == nullptr ? "positions " : "",
        a.inv_freq == nullptr ? "inv_freq" : "", ")"));
  }
  if (!StridesOk(a.x_strides) || !StridesOk(a.out_strides)) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": strides must be >= 0"));
  }
  if (a.out_strides.head < a.head_dim && a.heads > 1) {
    return absl::InvalidArgumentError(absl::StrCat(kOp, ": out head stride ", a.out_strides.head,
                                                   " is less than head_dim ", a.head_dim,
                                                   " (heads would overlap)"));
  }
  return DispatchFloatingDType(a.dtype, "Rope x", [&](auto tag) {
    using T = decltype(tag);
    constexpr int v = kVecWidth<T>;
    const bool vectorize =
        (a.head_dim / 2) % v == 0 && IsAligned<T>(a.x, v) && IsAligned<T>(a.out, v) &&
        a.x_strides.batch % v == 0 && a.x_strides.token % v == 0 && a.x_strides.head % v == 0 &&
        a.out_strides.batch % v == 0 && a.out_strides.token % v == 0 && a.out_strides.head % v == 0;
    return vectorize ? RopeWith<T, v>(a, stream) : RopeWith<T, 1>(a, stream);
  });
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
