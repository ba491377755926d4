// SwiGLU forward and backward (see swiglu.h).
//
// Work item = one chunk of kVec columns of one row; items are numbered row by
// row and visited grid-stride, so a warp reads 32 consecutive 16-byte vectors
// of each operand. Matrices whose rows are all contiguous are treated as one
// long row (no division per item).
#include <algorithm>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_numeric.h"
#include "kernels/cuda/swiglu.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65536;

// A [rows, cols] operand with a row stride.
template <typename T>
struct Rows {
  T* ptr;
  int64_t stride;
  __device__ __forceinline__ T* At(int64_t row, int64_t col) const {
    return ptr + row * stride + col;
  }
};

template <typename T>
__device__ __forceinline__ compute_t<T> Silu(compute_t<T> x) {
  using C = compute_t<T>;
  return DivRn(x, AddRn(C(1), Exp(-x)));  // as torch computes it
}

template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads)
    SwiGluForwardKernel(Rows<const T> gate, Rows<const T> up, Rows<T> out, int64_t rows,
                        int64_t chunks_per_row) {
  const int64_t items = rows * chunks_per_row;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t item = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; item < items;
       item += stride) {
    const int64_t row = rows == 1 ? 0 : item / chunks_per_row;
    const int64_t col = (item - row * chunks_per_row) * kVec;
    const Vec<T, kVec> g = LoadPack<kVec>(gate.At(row, col));
    const Vec<T, kVec> u = LoadPack<kVec>(up.At(row, col));
    Vec<T, kVec> o;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      // silu(gate) is rounded to T before the product, as HF's act_fn(gate) * up.
      const compute_t<T> act = RoundTo<T>(Silu<T>(Load(g.v[k])));
      o.v[k] = Store<T>(MulRn(act, Load(u.v[k])));
    }
    StorePack<kVec>(out.At(row, col), o);
  }
}

template <typename T, int kVec>
__global__ void __launch_bounds__(kThreads)
    SwiGluBackwardKernel(Rows<const T> gate, Rows<const T> up, Rows<const T> gout, Rows<T> ggate,
                         Rows<T> gup, int64_t rows, int64_t chunks_per_row) {
  using C = compute_t<T>;
  const int64_t items = rows * chunks_per_row;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t item = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; item < items;
       item += stride) {
    const int64_t row = rows == 1 ? 0 : item / chunks_per_row;
    const int64_t col = (item - row * chunks_per_row) * kVec;
    const Vec<T, kVec> g = LoadPack<kVec>(gate.At(row, col));
    const Vec<T, kVec> u = LoadPack<kVec>(up.At(row, col));
    const Vec<T, kVec> dy = LoadPack<kVec>(gout.At(row, col));
    Vec<T, kVec> gg, gu;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const C x = Load(g.v[k]), d = Load(dy.v[k]);
      const C denom = AddRn(C(1), Exp(-x));
      const C s = DivRn(C(1), denom);
      // d silu / dx = s * (1 + x * (1 - s)); d out / d up is the forward's rounded silu.
      const C dsilu = AddRn(C(1), MulRn(x, SubRn(C(1), s)));
      gg.v[k] = Store<T>(MulRn(MulRn(MulRn(d, Load(u.v[k])), s), dsilu));
      gu.v[k] = Store<T>(MulRn(d, RoundTo<T>(DivRn(x, denom))));
    }
    StorePack<kVec>(ggate.At(row, col), gg);
    StorePack<kVec>(gup.At(row, col), gu);
  }
}

struct Operand {
  const char* name;
  const void* ptr;
  int64_t stride;
};

absl::Status CheckOperands(const char* op, DType dtype, int64_t rows, int64_t cols,
                           std::initializer_list<Operand> operands) {
  if (!IsFloating(dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": dtype ", DTypeName(dtype), " is not floating (f32, f64, bf16, f16)"));
  }
  if (rows < 0 || cols < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": rows ", rows, " and cols ", cols, " must be >= 0"));
  }
  if (rows == 0 || cols == 0) return absl::OkStatus();
  for (const Operand& o : operands) {
    if (o.ptr == nullptr)
      return absl::InvalidArgumentError(absl::StrCat(op, ": ", o.name, " is null"));
    if (rows > 1 && o.stride < cols) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": ", o.name, " row stride ", o.stride, " is less than cols ", cols));
    }
  }
  return absl::OkStatus();
}

// The launch shape shared by both directions: rows/chunks after merging
// contiguous rows, and whether 16-byte vectors fit every operand.
struct Plan {
  int64_t rows, cols;
  bool contiguous;
  LaunchConfig config;
};

Plan MakePlan(int64_t rows, int64_t cols, std::initializer_list<Operand> operands,
              cudaStream_t stream) {
  bool contiguous = true;
  for (const Operand& o : operands) contiguous = contiguous && (o.stride == cols || rows == 1);
  Plan p{.rows = contiguous ? 1 : rows,
         .cols = contiguous ? rows * cols : cols,
         .contiguous = contiguous,
         .config = {}};
  p.config.block = dim3(kThreads);
  p.config.stream = stream;
  return p;
}

// Row strides matter only when rows were not merged.
template <typename T>
bool CanVectorize(const Plan& p, std::initializer_list<Operand> operands) {
  constexpr int v = kVecWidth<T>;
  if (p.cols % v != 0) return false;
  for (const Operand& o : operands) {
    if (!IsAligned<T>(o.ptr, v) || (!p.contiguous && o.stride % v != 0)) return false;
  }
  return true;
}

template <int kVec>
dim3 GridFor(int64_t rows, int64_t cols) {
  const int64_t items = rows * (cols / kVec);
  return dim3(unsigned(std::min<int64_t>((items + kThreads - 1) / kThreads, kMaxBlocks)));
}

}  // namespace

absl::Status LaunchSwiGluForward(const SwiGluArgs& a, cudaStream_t stream) {
  const std::initializer_list<Operand> ops = {
      {"gate", a.gate, a.gate_stride}, {"up", a.up, a.up_stride}, {"out", a.out, a.out_stride}};
  LOOM_RETURN_IF_ERROR(CheckOperands("SwiGluForward", a.dtype, a.rows, a.cols, ops));
  if (a.rows == 0 || a.cols == 0) return absl::OkStatus();
  Plan p = MakePlan(a.rows, a.cols, ops, stream);
  return DispatchFloatingDType(a.dtype, "SwiGluForward input", [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto vec) {
      constexpr int kVec = decltype(vec)::value;
      p.config.grid = GridFor<kVec>(p.rows, p.cols);
      return Launch<&SwiGluForwardKernel<T, kVec>>(
          p.config, Rows<const T>{static_cast<const T*>(a.gate), a.gate_stride},
          Rows<const T>{static_cast<const T*>(a.up), a.up_stride},
          Rows<T>{static_cast<T*>(a.out), a.out_stride}, p.rows, p.cols / kVec);
    };
    if (CanVectorize<T>(p, ops)) return run(std::integral_constant<int, kVecWidth<T>>{});
    return run(std::integral_constant<int, 1>{});
  });
}

absl::Status LaunchSwiGluBackward(const SwiGluBackwardArgs& a, cudaStream_t stream) {
  const std::initializer_list<Operand> ops = {{"gate", a.gate, a.gate_stride},
                                              {"up", a.up, a.up_stride},
                                              {"gout", a.gout, a.gout_stride},
                                              {"ggate", a.ggate, a.ggate_stride},
                                              {"gup", a.gup, a.gup_stride}};
  LOOM_RETURN_IF_ERROR(CheckOperands("SwiGluBackward", a.dtype, a.rows, a.cols, ops));
  if (a.rows == 0 || a.cols == 0) return absl::OkStatus();
  Plan p = MakePlan(a.rows, a.cols, ops, stream);
  return DispatchFloatingDType(a.dtype, "SwiGluBackward input", [&](auto tag) {
    using T = decltype(tag);
    auto run = [&](auto vec) {
      constexpr int kVec = decltype(vec)::value;
      p.config.grid = GridFor<kVec>(p.rows, p.cols);
      return Launch<&SwiGluBackwardKernel<T, kVec>>(
          p.config, Rows<const T>{static_cast<const T*>(a.gate), a.gate_stride},
          Rows<const T>{static_cast<const T*>(a.up), a.up_stride},
          Rows<const T>{static_cast<const T*>(a.gout), a.gout_stride},
          Rows<T>{static_cast<T*>(a.ggate), a.ggate_stride},
          Rows<T>{static_cast<T*>(a.gup), a.gup_stride}, p.rows, p.cols / kVec);
    };
    if (CanVectorize<T>(p, ops)) return run(std::integral_constant<int, kVecWidth<T>>{});
    return run(std::integral_constant<int, 1>{});
  });
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
