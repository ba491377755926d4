// Elementwise kernels (see elementwise.h).
//
// Two kernels per operation:
//   Flat*     every operand contiguous and 16-byte aligned: each thread moves
//             16-byte vectors (Vec<T, V>) in a grid-stride loop, the op a
//             template parameter so that its switch folds away;
//   Strided*  anything else: one element per iteration, offsets from the
//             merged dims (strided_index.h), the op a uniform runtime value.
//             Casts take both dtypes at run time too (StridedCopyKernel): one
//             kernel for all 49 dtype pairs instead of 49, which keeps nvcc's
//             time and the binary small at the price of a uniform switch.
// Both are memory-bound; the grid is capped at kMaxBlocks blocks of kThreads,
// enough to fill any current GPU, with grid-stride loops beyond that.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_types.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/elementwise_ops.h"
#include "kernels/cuda/strided_index.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

// ---- Element functions: stored types in, stored type out.

template <typename O, typename S>
struct CopyFn {
  __device__ __forceinline__ O operator()(S s) const { return Convert<O>(s); }
};

template <UnaryOp kOp, typename T>
struct UnaryFn {
  __device__ __forceinline__ T operator()(T x) const {
    return Store<T>(ApplyUnary<compute_t<T>>(kOp, Load(x)));
  }
};
template <typename T>
struct UnaryRuntimeFn {
  UnaryOp op;
  __device__ __forceinline__ T operator()(T x) const {
    return Store<T>(ApplyUnary<compute_t<T>>(op, Load(x)));
  }
};

template <BinaryOp kOp, typename T>
struct BinaryFn {
  __device__ __forceinline__ T operator()(T a, T b) const {
    return Store<T>(ApplyBinary<compute_t<T>>(kOp, Load(a), Load(b)));
  }
};
template <typename T>
struct BinaryRuntimeFn {
  BinaryOp op;
  __device__ __forceinline__ T operator()(T a, T b) const {
    return Store<T>(ApplyBinary<compute_t<T>>(op, Load(a), Load(b)));
  }
};

template <typename T>
struct AffineFn {
  compute_t<T> alpha, beta;
  __device__ __forceinline__ T operator()(T x) const {
    return Store<T>(ApplyAffine(alpha, Load(x), beta));
  }
};

template <typename T>
struct PowFn {
  compute_t<T> exponent;
  __device__ __forceinline__ T operator()(T x) const { return Store<T>(Pow(Load(x), exponent)); }
};

// ---- Kernels.

__device__ __forceinline__ int64_t FirstIndex() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t GridStride() { return int64_t(gridDim.x) * blockDim.x; }

template <int V, typename T>
__global__ void FlatFillKernel(T value, int64_t n, T* out) {
  const int64_t nvec = n / V;
  Vec<T, V> v;
#pragma unroll
  for (int j = 0; j < V; ++j) v.v[j] = value;
  for (int64_t i = FirstIndex(); i < nvec; i += GridStride()) {
    reinterpret_cast<Vec<T, V>*>(out)[i] = v;
  }
  for (int64_t i = nvec * V + FirstIndex(); i < n; i += GridStride()) out[i] = value;
}

template <int V, typename Fn, typename O, typename I>
__global__ void Flat1Kernel(Fn fn, int64_t n, O* out, const I* in) {
  const int64_t nvec = n / V;
  for (int64_t i = FirstIndex(); i < nvec; i += GridStride()) {
    const Vec<I, V> x = reinterpret_cast<const Vec<I, V>*>(in)[i];
    Vec<O, V> y;
#pragma unroll
    for (int j = 0; j < V; ++j) y.v[j] = fn(x.v[j]);
    reinterpret_cast<Vec<O, V>*>(out)[i] = y;
  }
  for (int64_t i = nvec * V + FirstIndex(); i < n; i += GridStride()) out[i] = fn(in[i]);
}

template <int V, typename Fn, typename T>
__global__ void Flat2Kernel(Fn fn, int64_t n, T* out, const T* a, const T* b) {
  const int64_t nvec = n / V;
  for (int64_t i = FirstIndex(); i < nvec; i += GridStride()) {
    const Vec<T, V> x = reinterpret_cast<const Vec<T, V>*>(a)[i];
    const Vec<T, V> y = reinterpret_cast<const Vec<T, V>*>(b)[i];
    Vec<T, V> z;
#pragma unroll
    for (int j = 0; j < V; ++j) z.v[j] = fn(x.v[j], y.v[j]);
    reinterpret_cast<Vec<T, V>*>(out)[i] = z;
  }
  for (int64_t i = nvec * V + FirstIndex(); i < n; i += GridStride()) out[i] = fn(a[i], b[i]);
}

template <typename IndexT, typename T>
__global__ void StridedFillKernel(StridedIndex<1> index, T value, int64_t n, T* out) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    int64_t off[1];
    index.Offsets<IndexT>(IndexT(i), off);
    out[off[0]] = value;
  }
}

template <typename IndexT, typename Fn, typename O, typename I>
__global__ void Strided1Kernel(Fn fn, StridedIndex<2> index, int64_t n, O* out, const I* in) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    int64_t off[2];
    index.Offsets<IndexT>(IndexT(i), off);
    out[off[0]] = fn(in[off[1]]);
  }
}

template <typename IndexT, typename Fn, typename T>
__global__ void Strided2Kernel(Fn fn, StridedIndex<3> index, int64_t n, T* out, const T* a,
                               const T* b) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    int64_t off[3];
    index.Offsets<IndexT>(IndexT(i), off);
    out[off[0]] = fn(a[off[1]], b[off[2]]);
  }
}

// Stores Convert<O>(s) at out[off] for the O of `out_dtype`.
template <typename S>
__device__ __forceinline__ void StoreConverted(DType out_dtype, void* out, int64_t off, S s) {
  switch (out_dtype) {
    case DType::kF32:
      static_cast<float*>(out)[off] = Convert<float>(s);
      return;
    case DType::kF64:
      static_cast<double*>(out)[off] = Convert<double>(s);
      return;
    case DType::kBF16:
      static_cast<bf16*>(out)[off] = Convert<bf16>(s);
      return;
    case DType::kF16:
      static_cast<f16*>(out)[off] = Convert<f16>(s);
      return;
    case DType::kI32:
      static_cast<int32_t*>(out)[off] = Convert<int32_t>(s);
      return;
    case DType::kI64:
      static_cast<int64_t*>(out)[off] = Convert<int64_t>(s);
      return;
    case DType::kBool:
      static_cast<bool*>(out)[off] = Convert<bool>(s);
      return;
  }
}

// out[off_out] = in[off_in] cast from `src_dtype` to `out_dtype`, exactly as
// CopyFn<O, S> casts it.
__device__ __forceinline__ void CopyElement(DType out_dtype, void* out, int64_t off_out,
                                            DType src_dtype, const void* in, int64_t off_in) {
  switch (src_dtype) {
    case DType::kF32:
      return StoreConverted(out_dtype, out, off_out, static_cast<const float*>(in)[off_in]);
    case DType::kF64:
      return StoreConverted(out_dtype, out, off_out, static_cast<const double*>(in)[off_in]);
    case DType::kBF16:
      return StoreConverted(out_dtype, out, off_out, static_cast<const bf16*>(in)[off_in]);
    case DType::kF16:
      return StoreConverted(out_dtype, out, off_out, static_cast<const f16*>(in)[off_in]);
    case DType::kI32:
      return StoreConverted(out_dtype, out, off_out, static_cast<const int32_t*>(in)[off_in]);
    case DType::kI64:
      return StoreConverted(out_dtype, out, off_out, static_cast<const int64_t*>(in)[off_in]);
    case DType::kBool:
      return StoreConverted(out_dtype, out, off_out, static_cast<const bool*>(in)[off_in]);
  }
}

template <typename IndexT>
__global__ void StridedCopyKernel(StridedIndex<2> index, int64_t n, DType out_dtype, void* out,
                                  DType src_dtype, const void* in) {
  for (int64_t i = FirstIndex(); i < n; i += GridStride()) {
    int64_t off[2];
    index.Offsets<IndexT>(IndexT(i), off);
    CopyElement(out_dtype, out, off[0], src_dtype, in, off[1]);
  }
}

// ---- Host side.

LaunchConfig GridFor(int64_t work, cudaStream_t stream) {
  const int64_t blocks = std::clamp<int64_t>((work + kThreads - 1) / kThreads, 1, kMaxBlocks);
  return {.grid = dim3(unsigned(blocks)), .block = dim3(kThreads), .stream = stream};
}

int64_t NumElements(absl::Span<const int64_t> sizes) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= std::max<int64_t>(s, 0);
  return n;
}

constexpr bool Wide(int64_t n) { return n > int64_t(UINT32_MAX); }

absl::Status CheckData(const char* op, const char* name, const void* data, int64_t n) {
  if (n > 0 && data == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": ", name, " is null for ", n, " elements"));
  }
  return absl::OkStatus();
}

absl::Status CheckSameDType(const char* op, DType want, const char* name, DType got) {
  if (want == got) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(op, ": ", name, " is ", DTypeName(got), ", expected ", DTypeName(want)));
}

absl::Status CheckArithmetic(const char* op, DType dtype) {
  if (dtype != DType::kBool) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(op, ": bool tensors have no arithmetic"));
}

// Calls fn(std::integral_constant<Op, op>{}): the op as a compile-time constant.
template <typename Op, Op kFirst, Op... kRest, typename Fn>
absl::Status DispatchOp(Op op, Fn&& fn) {
  if (op == kFirst) return fn(std::integral_constant<Op, kFirst>{});
  if constexpr (sizeof...(kRest) > 0) {
    return DispatchOp<Op, kRest...>(op, fn);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown elementwise op ", int(op)));
  }
}

template <typename Fn>
absl::Status DispatchUnary(UnaryOp op, Fn&& fn) {
  using U = UnaryOp;
  return DispatchOp<U, U::kNeg, U::kExp, U::kLog, U::kSqrt, U::kRsqrt, U::kAbs, U::kSigmoid,
                    U::kSilu, U::kTanh, U::kSquare, U::kReciprocal, U::kRelu, U::kSin, U::kCos>(op,
                                                                                                fn);
}

template <typename Fn>
absl::Status DispatchBinary(BinaryOp op, Fn&& fn) {
  using B = BinaryOp;
  return DispatchOp<B, B::kAdd, B::kSub, B::kMul, B::kDiv, B::kMaximum, B::kMinimum, B::kPow,
                    B::kSiluBackward, B::kEq, B::kLt, B::kGt>(op, fn);
}

// One input, one output: the flat kernel with `flat_fn` when the layout
// allows, else the strided kernel with `strided_fn`.
template <typename O, typename I, typename FlatFn, typename StridedFn>
absl::Status Run1(const char* op, absl::Span<const int64_t> sizes, const ConstArray& x,
                  const MutableArray& out, FlatFn flat_fn, StridedFn strided_fn,
                  cudaStream_t stream) {
  LOOM_ASSIGN_OR_RETURN(StridedIndex<2> index,
                        MakeStridedIndex<2>(op, sizes, {out.strides, x.strides}, {"out", "x"}));
  const int64_t n = NumElements(sizes);
  LOOM_RETURN_IF_ERROR(CheckData(op, "x", x.data, n));
  LOOM_RETURN_IF_ERROR(CheckData(op, "out", out.data, n));
  if (n == 0) return absl::OkStatus();
  O* o = static_cast<O*>(out.data);
  const I* in = static_cast<const I*>(x.data);
  constexpr int V = kVecWidth<O, I>;
  if (IsFlat(index) && AllAligned(sizeof(Vec<O, V>), o) && AllAligned(sizeof(Vec<I, V>), in)) {
    return Launch<&Flat1Kernel<V, FlatFn, O, I>>(GridFor(n / V, stream), flat_fn, n, o, in);
  }
  if (Wide(n)) {
    return Launch<&Strided1Kernel<uint64_t, StridedFn, O, I>>(GridFor(n, stream), strided_fn, index,
                                                              n, o, in);
  }
  return Launch<&Strided1Kernel<uint32_t, StridedFn, O, I>>(GridFor(n, stream), strided_fn, index,
                                                            n, o, in);
}

}  // namespace

absl::Status LaunchCopy(absl::Span<const int64_t> sizes, const ConstArray& src,
                        const MutableArray& out, cudaStream_t stream) {
  LOOM_ASSIGN_OR_RETURN(
      StridedIndex<2> index,
      MakeStridedIndex<2>("Copy", sizes, {out.strides, src.strides}, {"out", "src"}));
  const int64_t n = NumElements(sizes);
  LOOM_RETURN_IF_ERROR(CheckData("Copy", "src", src.data, n));
  LOOM_RETURN_IF_ERROR(CheckData("Copy", "out", out.data, n));
  if (n == 0) return absl::OkStatus();
  if (IsFlat(index)) {
    const absl::StatusOr<bool> launched =
        DispatchDeviceType(src.dtype, [&](auto stag) -> absl::StatusOr<bool> {
          return DispatchDeviceType(out.dtype, [&](auto otag) -> absl::StatusOr<bool> {
            using S = decltype(stag);
            using O = decltype(otag);
            constexpr int V = kVecWidth<O, S>;
            O* o = static_cast<O*>(out.data);
            const S* in = static_cast<const S*>(src.data);
            if (!AllAligned(sizeof(Vec<O, V>), o) || !AllAligned(sizeof(Vec<S, V>), in)) {
              return false;
            }
            LOOM_RETURN_IF_ERROR((Launch<&Flat1Kernel<V, CopyFn<O, S>, O, S>>(
                GridFor(n / V, stream), CopyFn<O, S>{}, n, o, in)));
            return true;
          });
        });
    if (!launched.ok() || *launched) return launched.status();
  }
  if (Wide(n)) {
    return Launch<&StridedCopyKernel<uint64_t>>(GridFor(n, stream), index, n, out.dtype, out.data,
                                                src.dtype, src.data);
  }
  return Launch<&StridedCopyKernel<uint32_t>>(GridFor(n, stream), index, n, out.dtype, out.data,
                                              src.dtype, src.data);
}

absl::Status LaunchFill(absl::Span<const int64_t> sizes, const MutableArray& out, double value,
                        cudaStream_t stream) {
  LOOM_ASSIGN_OR_RETURN(StridedIndex<1> index,
                        MakeStridedIndex<1>("Fill", sizes, {out.strides}, {"out"}));
  const int64_t n = NumElements(sizes);
  LOOM_RETURN_IF_ERROR(CheckData("Fill", "out", out.data, n));
  if (n == 0) return absl::OkStatus();
  return DispatchDeviceType(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    constexpr int V = kVecWidth<T>;
    T* o = static_cast<T*>(out.data);
    const T v = FromDoubleOnDevice<T>(value);
    if (IsFlat(index) && AllAligned(sizeof(Vec<T, V>), o)) {
      return Launch<&FlatFillKernel<V, T>>(GridFor(n / V, stream), v, n, o);
    }
    if (Wide(n)) {
      return Launch<&StridedFillKernel<uint64_t, T>>(GridFor(n, stream), index, v, n, o);
    }
    return Launch<&StridedFillKernel<uint32_t, T>>(GridFor(n, stream), index, v, n, o);
  });
}

absl::Status LaunchUnary(UnaryOp op, absl::Span<const int64_t> sizes, const ConstArray& x,
                         const MutableArray& out, cudaStream_t stream) {
  LOOM_RETURN_IF_ERROR(CheckSameDType("Unary", x.dtype, "out", out.dtype));
  LOOM_RETURN_IF_ERROR(CheckArithmetic("Unary", x.dtype));
  if (!IsFloating(x.dtype) && !IsIntegerUnary(op)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Unary op ", int(op), " needs a floating dtype, got ", DTypeName(x.dtype)));
  }
  return DispatchDeviceType(x.dtype, [&](auto tag) -> absl::Status {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      return absl::InternalError("unreachable: bool checked above");
    } else {
      return DispatchUnary(op, [&](auto kOp) -> absl::Status {
        if constexpr (!kIsFloatType<T> && !IsIntegerUnary(kOp())) {
          return absl::InternalError("unreachable: integer op checked above");
        } else {
          return Run1<T, T>("Unary", sizes, x, out, UnaryFn<kOp(), T>{}, UnaryRuntimeFn<T>{op},
                            stream);
        }
      });
    }
  });
}

absl::Status LaunchBinary(BinaryOp op, absl::Span<const int64_t> sizes, const ConstArray& a,
                          const ConstArray& b, const MutableArray& out, cudaStream_t stream) {
  LOOM_RETURN_IF_ERROR(CheckSameDType("Binary", out.dtype, "a", a.dtype));
  LOOM_RETURN_IF_ERROR(CheckSameDType("Binary", out.dtype, "b", b.dtype));
  LOOM_RETURN_IF_ERROR(CheckArithmetic("Binary", out.dtype));
  if (op == BinaryOp::kSiluBackward && !IsFloating(out.dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Binary: kSiluBackward needs a floating dtype, got ", DTypeName(out.dtype)));
  }
  LOOM_ASSIGN_OR_RETURN(
      StridedIndex<3> index,
      MakeStridedIndex<3>("Binary", sizes, {out.strides, a.strides, b.strides}, {"out", "a", "b"}));
  const int64_t n = NumElements(sizes);
  LOOM_RETURN_IF_ERROR(CheckData("Binary", "a", a.data, n));
  LOOM_RETURN_IF_ERROR(CheckData("Binary", "b", b.data, n));
  LOOM_RETURN_IF_ERROR(CheckData("Binary", "out", out.data, n));
  if (n == 0) return absl::OkStatus();
  return DispatchDeviceType(out.dtype, [&](auto tag) -> absl::Status {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      return absl::InternalError("unreachable: bool checked above");
    } else {
      T* o = static_cast<T*>(out.data);
      const T* pa = static_cast<const T*>(a.data);
      const T* pb = static_cast<const T*>(b.data);
      constexpr int V = kVecWidth<T>;
      if (IsFlat(index) && AllAligned(sizeof(Vec<T, V>), o, pa, pb)) {
        return DispatchBinary(op, [&](auto kOp) {
          using Fn = BinaryFn<kOp(), T>;
          return Launch<&Flat2Kernel<V, Fn, T>>(GridFor(n / V, stream), Fn{}, n, o, pa, pb);
        });
      }
      using Fn = BinaryRuntimeFn<T>;
      if (Wide(n)) {
        return Launch<&Strided2Kernel<uint64_t, Fn, T>>(GridFor(n, stream), Fn{op}, index, n, o, pa,
                                                        pb);
      }
      return Launch<&Strided2Kernel<uint32_t, Fn, T>>(GridFor(n, stream), Fn{op}, index, n, o, pa,
                                                      pb);
    }
  });
}

absl::Status LaunchAffine(absl::Span<const int64_t> sizes, const ConstArray& x, double alpha,
                          double beta, const MutableArray& out, cudaStream_t stream) {
  LOOM_RETURN_IF_ERROR(CheckSameDType("Affine", x.dtype, "out", out.dtype));
  LOOM_RETURN_IF_ERROR(CheckArithmetic("Affine", x.dtype));
  return DispatchDeviceType(x.dtype, [&](auto tag) -> absl::Status {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      return absl::InternalError("unreachable: bool checked above");
    } else {
      using C = compute_t<T>;
      const AffineFn<T> fn{C(alpha), C(beta)};
      return Run1<T, T>("Affine", sizes, x, out, fn, fn, stream);
    }
  });
}

absl::Status LaunchPowScalar(absl::Span<const int64_t> sizes, const ConstArray& x, double exponent,
                             const MutableArray& out, cudaStream_t stream) {
  LOOM_RETURN_IF_ERROR(CheckSameDType("PowScalar", x.dtype, "out", out.dtype));
  if (!IsFloating(x.dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "PowScalar: expected a floating dtype (f32, f64, bf16, f16), got ", DTypeName(x.dtype)));
  }
  return DispatchDeviceFloat(x.dtype, [&](auto tag) {
    using T = decltype(tag);
    const PowFn<T> fn{compute_t<T>(exponent)};
    return Run1<T, T>("PowScalar", sizes, x, out, fn, fn, stream);
  });
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
