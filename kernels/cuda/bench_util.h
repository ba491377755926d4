// Shared pieces of the CUDA kernel benchmarks (*_bench.cc): device detection,
// device buffers, cudaEvent timing inside Google Benchmark, and throughput
// counters against the device's peak.
//
//   BENCHMARK(BM_Foo)->UseManualTime();
//   void BM_Foo(benchmark::State& state) {
//     DeviceBuffer x(bytes);
//     const double seconds = bench::TimeLaunches(state, [&] { return LaunchFoo(...); });
//     bench::ReportBytes(state, bytes_moved, seconds);
//   }
//   int main(int argc, char** argv) { return bench::BenchMain(argc, argv, "foo_bench"); }
//
// Counters: TFLOP/s or GB/s, and the fraction of the peak: DRAM bandwidth from
// cudaDevAttrMemoryClockRate x bus width (x2, DDR), dense bf16 tensor-core
// FLOP/s from SMs x clock x FLOP per SM per clock (2048 on sm_80, 4096 on
// sm_90; other architectures report no peak). Without a GPU, BenchMain prints
// one line saying so and returns 0: an emulated run is not a speed figure.
#ifndef LOOM_KERNELS_CUDA_BENCH_UTIL_H_
#define LOOM_KERNELS_CUDA_BENCH_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"
#include "runtime/dtype.h"

namespace loom::cuda::bench {

struct Device {
  std::string name;
  int sm = 0;  // compute capability, e.g. 90
  int multiprocessors = 0;
  double clock_hz = 0;
  double peak_bytes_per_s = 0;
  double peak_bf16_flops = 0;  // 0: unknown for this architecture
};

// The current device, or FailedPrecondition saying why there is none.
absl::StatusOr<Device> CurrentDevice();
// Dense bf16 tensor-core FLOP per SM per clock for compute capability `sm` (0 if unknown).
double Bf16FlopsPerSmPerClock(int sm);
double PeakBytesPerSecond(double memory_clock_hz, int bus_width_bits);

// Device memory, freed on destruction; Fill writes uniform values in [-1, 1).
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  bool ok() const { return ptr_ != nullptr || bytes_ == 0; }
  void Fill(DType dtype, uint64_t seed);

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Runs `launch` once per benchmark iteration between two CUDA events and
// reports each iteration's GPU time (use ->UseManualTime()). Returns the mean
// seconds per launch; a failed launch or allocation skips the benchmark with
// its message.
double TimeLaunches(benchmark::State& state, const std::function<absl::Status()>& launch);

// Counters for work done per launch: TFLOP/s (and % of the bf16 peak), GB/s (and % of DRAM peak).
void ReportFlops(benchmark::State& state, double flops, double seconds);
void ReportBytes(benchmark::State& state, double bytes, double seconds);

// main() of every bench: runs the registered benchmarks on a GPU; without one
// prints "<name>: no CUDA device (...); nothing measured" and returns 0.
int BenchMain(int argc, char** argv, const char* name);

}  // namespace loom::cuda::bench

#endif  // LOOM_KERNELS_CUDA_BENCH_UTIL_H_
