// Elementwise benchmark over Llama-3 activation shapes (hidden 4096 / 8192 at
// 4096 and 16384 tokens), bf16: a contiguous add (16-byte vector path), a
// broadcast bias add and a transposed copy (strided path), a bf16 -> f32 cast
// and a SiLU.
//
//   bazel run -c opt //kernels/cuda:elementwise_bench
//
// GB/s counts every element read and written once, against the DRAM peak.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/bench_util.h"
#include "kernels/cuda/elementwise.h"

namespace loom::cuda {
namespace {

enum class Kind { kAdd, kBiasAdd, kCast, kTransposedCopy, kSilu };

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kAdd:
      return "add";
    case Kind::kBiasAdd:
      return "bias_add";
    case Kind::kCast:
      return "cast_bf16_f32";
    case Kind::kTransposedCopy:
      return "transposed_copy";
    case Kind::kSilu:
      return "silu";
  }
  return "?";
}

void BM_Elementwise(benchmark::State& state, Kind kind, int64_t n, int64_t d) {
  const size_t elems = size_t(n * d);
  bench::DeviceBuffer a(elems * 2), b(elems * 2), out(elems * 4);
  if (!a.ok() || !b.ok() || !out.ok()) {
    state.SkipWithError("cudaMalloc failed (out of device memory?)");
    return;
  }
  a.Fill(DType::kBF16, 1);
  b.Fill(DType::kBF16, 2);
  const std::vector<int64_t> sizes = {n, d}, rows = {d, 1}, bias = {0, 1}, cols = {1, n};
  const ConstArray x{a.get(), DType::kBF16, rows};
  const MutableArray y{out.get(), DType::kBF16, rows};
  double bytes = 0;
  std::function<absl::Status()> launch;
  switch (kind) {
    case Kind::kAdd:
      launch = [&] {
        return LaunchBinary(BinaryOp::kAdd, sizes, x, {b.get(), DType::kBF16, rows}, y, nullptr);
      };
      bytes = 3.0 * double(elems) * 2;
      break;
    case Kind::kBiasAdd:
      launch = [&] {
        return LaunchBinary(BinaryOp::kAdd, sizes, x, {b.get(), DType::kBF16, bias}, y, nullptr);
      };
      bytes = 2.0 * double(elems) * 2 + double(d) * 2;
      break;
    case Kind::kCast:
      launch = [&] { return LaunchCopy(sizes, x, {out.get(), DType::kF32, rows}, nullptr); };
      bytes = double(elems) * (2 + 4);
      break;
    case Kind::kTransposedCopy:
      launch = [&] { return LaunchCopy(sizes, x, {out.get(), DType::kBF16, cols}, nullptr); };
      bytes = 2.0 * double(elems) * 2;
      break;
    case Kind::kSilu:
      launch = [&] { return LaunchUnary(UnaryOp::kSilu, sizes, x, y, nullptr); };
      bytes = 2.0 * double(elems) * 2;
      break;
  }
  const double s = bench::TimeLaunches(state, launch);
  bench::ReportBytes(state, bytes, s);
}

void Register() {
  for (Kind kind : {Kind::kAdd, Kind::kBiasAdd, Kind::kCast, Kind::kTransposedCopy, Kind::kSilu}) {
    for (int64_t d : {4096, 8192}) {
      for (int64_t n : {4096, 16384}) {
        const std::string name = absl::StrCat("Elementwise/", KindName(kind), "/D:", d, "/N:", n);
        benchmark::RegisterBenchmark(name.c_str(), BM_Elementwise, kind, n, d)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

}  // namespace
}  // namespace loom::cuda

int main(int argc, char** argv) {
  loom::cuda::Register();
  return loom::cuda::bench::BenchMain(argc, argv, "elementwise_bench");
}
