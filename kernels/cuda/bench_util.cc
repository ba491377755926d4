// Benchmark helpers (see bench_util.h).
#include "kernels/cuda/bench_util.h"

#include <cuda_runtime_api.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/random.h"

namespace loom::cuda::bench {
namespace {

const Device* g_device = nullptr;  // set by BenchMain before any benchmark runs

}  // namespace

double Bf16FlopsPerSmPerClock(int sm) {
  switch (sm) {
    case 80:  // A100: 312 TFLOP/s = 108 SMs x 1.41 GHz x 2048
      return 2048;
    case 90:  // H100 SXM: 989 TFLOP/s = 132 SMs x 1.83 GHz x 4096
      return 4096;
    default:
      return 0;
  }
}

double PeakBytesPerSecond(double memory_clock_hz, int bus_width_bits) {
  return 2.0 * memory_clock_hz * double(bus_width_bits) / 8.0;
}

absl::StatusOr<Device> CurrentDevice() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaSuccess && count == 0) err = cudaErrorNoDevice;
  int id = 0;
  if (err == cudaSuccess) err = cudaGetDevice(&id);
  cudaDeviceProp prop{};
  if (err == cudaSuccess) err = cudaGetDeviceProperties(&prop, id);
  int clock_khz = 0, mem_clock_khz = 0;
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, id);
  if (err == cudaSuccess) {
    err = cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, id);
  }
  if (err != cudaSuccess) {
    cudaGetLastError();
    return absl::FailedPreconditionError(
        absl::StrCat(cudaGetErrorName(err), ": ", cudaGetErrorString(err)));
  }
  Device d;
  d.name = prop.name;
  d.sm = prop.major * 10 + prop.minor;
  d.multiprocessors = prop.multiProcessorCount;
  d.clock_hz = clock_khz * 1e3;
  d.peak_bytes_per_s = PeakBytesPerSecond(mem_clock_khz * 1e3, prop.memoryBusWidth);
  d.peak_bf16_flops = Bf16FlopsPerSmPerClock(d.sm) * d.multiprocessors * d.clock_hz;
  return d;
}

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes > 0 && cudaMalloc(&ptr_, bytes) != cudaSuccess) {
    cudaGetLastError();
    ptr_ = nullptr;
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_ != nullptr) cudaFree(ptr_);
}

void DeviceBuffer::Fill(DType dtype, uint64_t seed) {
  if (ptr_ == nullptr) return;
  const int64_t n = int64_t(bytes_ / SizeOf(dtype));
  (void)LaunchRandomUniform(ptr_, dtype, n, seed, 0, -1.0, 1.0, nullptr);
}

double TimeLaunches(benchmark::State& state, const std::function<absl::Status()>& launch) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  double total = 0;
  int64_t n = 0;
  if (absl::Status s = launch(); !s.ok()) {  // warm-up: plans, caches, clocks
    state.SkipWithError(std::string(s.message()).c_str());
  } else {
    cudaDeviceSynchronize();
    for (auto _ : state) {
      cudaEventRecord(start);
      const absl::Status s = launch();
      cudaEventRecord(stop);
      cudaEventSynchronize(stop);
      if (!s.ok()) {
        state.SkipWithError(std::string(s.message()).c_str());
        break;
      }
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      state.SetIterationTime(ms / 1e3);
      total += ms / 1e3;
      ++n;
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return n > 0 ? total / double(n) : 0;
}

void ReportFlops(benchmark::State& state, double flops, double seconds) {
  if (seconds <= 0) return;
  const double rate = flops / seconds;
  state.counters["TFLOP/s"] = rate / 1e12;
  if (g_device != nullptr && g_device->peak_bf16_flops > 0) {
    state.counters["%bf16_peak"] = 100 * rate / g_device->peak_bf16_flops;
  }
}

void ReportBytes(benchmark::State& state, double bytes, double seconds) {
  if (seconds <= 0) return;
  const double rate = bytes / seconds;
  state.counters["GB/s"] = rate / 1e9;
  if (g_device != nullptr && g_device->peak_bytes_per_s > 0) {
    state.counters["%dram_peak"] = 100 * rate / g_device->peak_bytes_per_s;
  }
}

int BenchMain(int argc, char** argv, const char* name) {
  const absl::StatusOr<Device> device = CurrentDevice();
  if (!device.ok()) {
    std::printf("%s: no CUDA device (%s); nothing measured\n", name,
                std::string(device.status().message()).c_str());
    return 0;
  }
  static const Device d = *device;
  g_device = &d;
  std::printf(
      "%s on %s (sm_%d, %d SMs, %.2f GHz): peak %.0f GB/s DRAM, %.0f TFLOP/s dense bf16%s\n", name,
      d.name.c_str(), d.sm, d.multiprocessors, d.clock_hz / 1e9, d.peak_bytes_per_s / 1e9,
      d.peak_bf16_flops / 1e12, d.peak_bf16_flops > 0 ? "" : " (unknown for this architecture)");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace loom::cuda::bench
