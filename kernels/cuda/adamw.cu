// Multi-tensor fused AdamW (see adamw.h).
//
// Launch plan: tensors with the same (param, grad) dtype pair share launches.
// A launch's chunk table lists up to kAdamWTensorsPerLaunch tensors and the
// index of each one's first chunk; block b finds its tensor by binary search
// and updates elements [chunk * kAdamWChunk, ...) of it. The table travels in
// the kernel's parameter space (< 4 KiB, the classic limit), so a step of the
// optimizer needs no device allocation and no host-to-device copy.
#include <algorithm>
#include <climits>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/adamw.h"
#include "kernels/cuda/device/compat.h"
#include "kernels/cuda/device_numeric.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace {

constexpr int kThreads = 512;
constexpr int kVec = 4;  // elements per vector access (16 bytes of f32 state)

struct ChunkTable {
  int num_tensors;
  int first_chunk[kAdamWTensorsPerLaunch + 1];  // first_chunk[num_tensors] = chunks in the launch
  void* param[kAdamWTensorsPerLaunch];
  const void* grad[kAdamWTensorsPerLaunch];
  void* exp_avg[kAdamWTensorsPerLaunch];
  void* exp_avg_sq[kAdamWTensorsPerLaunch];
  int64_t numel[kAdamWTensorsPerLaunch];
};

// Per-step constants in the compute type C, computed in double and rounded
// once, exactly as kernels/cpu/adamw.cc does.
template <typename C>
struct StepScalars {
  C decay;  // 1 - lr * weight_decay
  C beta1, one_minus_beta1;
  C beta2, one_minus_beta2;
  C bias_correction2_sqrt;
  C neg_step_size;  // -lr / (1 - beta1^step)
  C eps;
};

static_assert(sizeof(ChunkTable) + sizeof(StepScalars<double>) <= 4096,
              "AdamW kernel arguments must fit the 4 KiB parameter space");

template <typename C>
StepScalars<C> MakeStepScalars(const AdamWStep& p) {
  const double step = double(p.step);
  StepScalars<C> s;
  s.decay = C(1.0 - p.lr * p.weight_decay);
  s.beta1 = C(p.beta1);
  s.one_minus_beta1 = C(1.0 - p.beta1);
  s.beta2 = C(p.beta2);
  s.one_minus_beta2 = C(1.0 - p.beta2);
  s.bias_correction2_sqrt = C(std::sqrt(1.0 - std::pow(p.beta2, step)));
  s.neg_step_size = C(-(p.lr / (1.0 - std::pow(p.beta1, step))));
  s.eps = C(p.eps);
  return s;
}

template <typename C>
__device__ __forceinline__ void UpdateElement(C& p, C g, C& m, C& v, const StepScalars<C>& s) {
  p = MulRn(p, s.decay);
  m = FmaRn(g, s.one_minus_beta1, MulRn(m, s.beta1));
  v = FmaRn(MulRn(s.one_minus_beta2, g), g, MulRn(v, s.beta2));
  const C denom = AddRn(DivRn(SqrtRn(v), s.bias_correction2_sqrt), s.eps);
  p = AddRn(p, DivRn(MulRn(s.neg_step_size, m), denom));
}

template <typename T>
__device__ __forceinline__ bool VectorAligned(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % (sizeof(T) * kVec) == 0;
}

template <typename P, typename G>
__global__ void __launch_bounds__(kThreads)
    AdamWKernel(ChunkTable table, StepScalars<compute_t<P>> s) {
  using C = compute_t<P>;
  const int chunk = blockIdx.x;
  // The last tensor whose first chunk is <= this block's chunk.
  int lo = 0, hi = table.num_tensors - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (table.first_chunk[mid] <= chunk) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const int t = lo;
  const int64_t begin = int64_t(chunk - table.first_chunk[t]) * kAdamWChunk;
  const int64_t n = min(table.numel[t] - begin, kAdamWChunk);
  P* param = static_cast<P*>(table.param[t]) + begin;
  const G* grad = static_cast<const G*>(table.grad[t]) + begin;
  C* m = static_cast<C*>(table.exp_avg[t]) + begin;
  C* v = static_cast<C*>(table.exp_avg_sq[t]) + begin;

  int64_t scalar_begin = 0;
  if (VectorAligned(param) && VectorAligned(grad) && VectorAligned(m) && VectorAligned(v)) {
    scalar_begin = n / kVec * kVec;
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < scalar_begin;
         i += int64_t(blockDim.x) * kVec) {
      Vec<P, kVec> pp = LoadPack<kVec>(param + i);
      const Vec<G, kVec> gp = LoadPack<kVec>(grad + i);
      Vec<C, kVec> mp = LoadPack<kVec>(m + i);
      Vec<C, kVec> vp = LoadPack<kVec>(v + i);
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        C pk = Load(pp.v[k]);
        UpdateElement<C>(pk, C(Load(gp.v[k])), mp.v[k], vp.v[k], s);
        pp.v[k] = Store<P>(pk);
      }
      StorePack<kVec>(param + i, pp);
      StorePack<kVec>(m + i, mp);
      StorePack<kVec>(v + i, vp);
    }
  }
  for (int64_t i = scalar_begin + threadIdx.x; i < n; i += blockDim.x) {
    C pk = Load(param[i]);
    UpdateElement<C>(pk, C(Load(grad[i])), m[i], v[i], s);
    param[i] = Store<P>(pk);
  }
}

absl::Status CheckTensor(size_t i, const AdamWTensor& t) {
  auto error = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("AdamW: tensor ", i, ": ", parts...));
  };
  if (!IsFloating(t.param_dtype) || !IsFloating(t.grad_dtype)) {
    return error("param ", DTypeName(t.param_dtype), " and grad ", DTypeName(t.grad_dtype),
                 " must be floating (f32, f64, bf16, f16)");
  }
  if (t.numel < 0) return error("numel ", t.numel, " < 0");
  if (t.numel == 0) return absl::OkStatus();
  if (t.param == nullptr) return error("param is null");
  if (t.grad == nullptr) return error("grad is null");
  if (t.exp_avg == nullptr) return error("exp_avg is null");
  if (t.exp_avg_sq == nullptr) return error("exp_avg_sq is null");
  const size_t state = t.param_dtype == DType::kF64 ? 8 : 4;
  const auto misaligned = [](const void* p, size_t bytes) {
    return reinterpret_cast<uintptr_t>(p) % bytes != 0;
  };
  if (misaligned(t.param, SizeOf(t.param_dtype)) || misaligned(t.grad, SizeOf(t.grad_dtype)) ||
      misaligned(t.exp_avg, state) || misaligned(t.exp_avg_sq, state)) {
    return error("a pointer is not aligned to its element size");
  }
  return absl::OkStatus();
}

template <typename P, typename G>
absl::Status LaunchTable(const ChunkTable& table, const AdamWStep& step, cudaStream_t stream) {
  const int chunks = table.first_chunk[table.num_tensors];
  return Launch<&AdamWKernel<P, G>>(
      {.grid = dim3(unsigned(chunks)), .block = dim3(kThreads), .stream = stream}, table,
      MakeStepScalars<compute_t<P>>(step));
}

// Launches the tensors `indices` (one dtype pair) in as few chunk tables as fit.
template <typename P, typename G>
absl::Status LaunchGroup(absl::Span<const AdamWTensor> tensors, const std::vector<size_t>& indices,
                         const AdamWStep& step, cudaStream_t stream) {
  ChunkTable table{};
  table.num_tensors = 0;
  table.first_chunk[0] = 0;
  for (size_t i : indices) {
    const AdamWTensor& t = tensors[i];
    const int64_t chunks = (t.numel + kAdamWChunk - 1) / kAdamWChunk;
    if (chunks > INT_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat("AdamW: tensor ", i, ": ", t.numel, " elements is too many for one grid"));
    }
    const int used = table.first_chunk[table.num_tensors];
    if (table.num_tensors == kAdamWTensorsPerLaunch || chunks > int64_t(INT_MAX) - used) {
      LOOM_RETURN_IF_ERROR((LaunchTable<P, G>(table, step, stream)));
      table.num_tensors = 0;
    }
    const int n = table.num_tensors++;
    table.param[n] = t.param;
    table.grad[n] = t.grad;
    table.exp_avg[n] = t.exp_avg;
    table.exp_avg_sq[n] = t.exp_avg_sq;
    table.numel[n] = t.numel;
    table.first_chunk[n + 1] = table.first_chunk[n] + int(chunks);
  }
  if (table.num_tensors == 0) return absl::OkStatus();
  return LaunchTable<P, G>(table, step, stream);
}

}  // namespace

absl::Status LaunchAdamW(absl::Span<const AdamWTensor> tensors, const AdamWStep& step,
                         cudaStream_t stream) {
  if (step.step < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("AdamW: step must be >= 1 (1-based, after increment), got ", step.step));
  }
  // Groups of non-empty tensors by dtype pair, in order of first appearance.
  std::vector<std::pair<std::pair<DType, DType>, std::vector<size_t>>> groups;
  for (size_t i = 0; i < tensors.size(); ++i) {
    LOOM_RETURN_IF_ERROR(CheckTensor(i, tensors[i]));
    if (tensors[i].numel == 0) continue;
    const std::pair<DType, DType> key{tensors[i].param_dtype, tensors[i].grad_dtype};
    auto it =
        std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == key; });
    if (it == groups.end()) {
      groups.push_back({key, {}});
      it = groups.end() - 1;
    }
    it->second.push_back(i);
  }
  for (const auto& [key, indices] : groups) {
    LOOM_RETURN_IF_ERROR(DispatchFloatingDType(key.first, "AdamW param", [&](auto ptag) {
      return DispatchFloatingDType(key.second, "AdamW grad", [&](auto gtag) {
        return LaunchGroup<decltype(ptag), decltype(gtag)>(tensors, indices, step, stream);
      });
    }));
  }
  return absl::OkStatus();
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
