// Kernel launches, identical on both build paths (g++ cannot parse <<<>>>).
//
//   LOOM_RETURN_IF_ERROR(SetMaxDynamicSharedMemory<&GemmKernel<Cfg>>(smem));
//   LOOM_RETURN_IF_ERROR(Launch<&GemmKernel<Cfg>>(
//       {.grid = grid, .block = dim3(128), .dynamic_smem = smem, .stream = stream}, args...));
//
// On the GPU, Launch is cudaLaunchKernel and returns the launch error (with
// the kernel's name); execution is asynchronous on the stream. Under the
// emulator, it runs every block before returning and reports emulator errors
// (divergent barriers, hazards, ...) with the kernel, block, thread and line.
#ifndef LOOM_KERNELS_CUDA_DEVICE_LAUNCH_H_
#define LOOM_KERNELS_CUDA_DEVICE_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <array>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/cuda/device/namespace.h"

#if defined(LOOM_CUDA_EMULATION)
#include "kernels/emu/emulator.h"
#endif

namespace loom::LOOM_CUDA_NAMESPACE {

struct LaunchConfig {
  dim3 grid;
  dim3 block;
  size_t dynamic_smem = 0;
  cudaStream_t stream = nullptr;
};

namespace launch_internal {

// "GemmKernel<Config>" from the compiler's name of the template argument.
template <auto Kernel>
std::string KernelName() {
  std::string_view s = __PRETTY_FUNCTION__;
  const size_t at = s.find("Kernel = ");
  if (at == std::string_view::npos) return std::string(s);
  s.remove_prefix(at + 9);
  int depth = 0;
  size_t end = 0;
  for (; end < s.size(); ++end) {
    const char c = s[end];
    if (c == '<' || c == '(') ++depth;
    if (c == '>' || c == ')') --depth;
    if (depth < 0 || (depth == 0 && (c == ';' || c == ']'))) break;
  }
  s = s.substr(0, end);
  if (s.substr(0, 2) == "& ") s.remove_prefix(2);
  return std::string(s);
}

template <typename F>
struct KernelParams;
template <typename... P>
struct KernelParams<void (*)(P...)> {
  using Tuple = std::tuple<P...>;
  static constexpr size_t kCount = sizeof...(P);
};

}  // namespace launch_internal

template <auto Kernel, typename... Args>
absl::Status Launch(const LaunchConfig& config, Args&&... args) {
  using Params = launch_internal::KernelParams<decltype(Kernel)>;
  static_assert(Params::kCount == sizeof...(Args), "Launch: wrong number of kernel arguments");
  typename Params::Tuple params(std::forward<Args>(args)...);
#if defined(LOOM_CUDA_EMULATION)
  emu::GridLaunch g{
      .kernel = launch_internal::KernelName<Kernel>(),
      .grid = config.grid,
      .block = config.block,
      .dynamic_smem = config.dynamic_smem,
      .max_dynamic_smem = emu::MaxDynamicSharedMemory(reinterpret_cast<const void*>(Kernel))};
  // Every thread gets its own copy of the arguments, as on the GPU.
  return emu::RunGrid(g, [&] { std::apply([](auto... p) { Kernel(p...); }, params); });
#else
  std::array<void*, Params::kCount + 1> ptrs{};
  std::apply([&](auto&... p) { ptrs = {static_cast<void*>(&p)..., nullptr}; }, params);
  const cudaError_t err =
      cudaLaunchKernel(reinterpret_cast<const void*>(Kernel), config.grid, config.block,
                       ptrs.data(), config.dynamic_smem, config.stream);
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(
      "launch of ", launch_internal::KernelName<Kernel>(), " (grid ", config.grid.x, "x",
      config.grid.y, "x", config.grid.z, ", block ", config.block.x, "x", config.block.y, "x",
      config.block.z, ", ", config.dynamic_smem, " B shared) failed: ", cudaGetErrorName(err), " (",
      cudaGetErrorString(err), ")"));
#endif
}

// Allows `Kernel` to use more than 48 KiB of dynamic shared memory.
template <auto Kernel>
absl::Status SetMaxDynamicSharedMemory(size_t bytes) {
#if defined(LOOM_CUDA_EMULATION)
  emu::SetMaxDynamicSharedMemory(reinterpret_cast<const void*>(Kernel), bytes);
  return absl::OkStatus();
#else
  const cudaError_t err =
      cudaFuncSetAttribute(reinterpret_cast<const void*>(Kernel),
                           cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("cudaFuncSetAttribute(", launch_internal::KernelName<Kernel>(),
                   ", MaxDynamicSharedMemorySize, ", bytes, ") failed: ", cudaGetErrorName(err)));
#endif
}

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_DEVICE_LAUNCH_H_
