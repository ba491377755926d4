// Multi-tensor AdamW benchmark: one optimizer step over the tensors of one
// Llama-3 8B / 70B decoder layer (q, k, v, o, gate, up, down, two norms; 218M
// / 856M parameters), f32 master params with f32 grads, and bf16 params with
// f32 grads.
//
//   bazel run -c opt //kernels/cuda:adamw_bench
//
// GB/s counts what each element needs (param read + write, grad read, both
// moments read + write), against the DRAM peak.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/adamw.h"
#include "kernels/cuda/bench_util.h"

namespace loom::cuda {
namespace {

struct Model {
  const char* name;
  int64_t hidden, intermediate, heads, kv_heads;
};
const Model kModels[] = {{"8B", 4096, 14336, 32, 8}, {"70B", 8192, 28672, 64, 8}};

void BM_AdamW(benchmark::State& state, Model m, DType param) {
  const int64_t d = m.hidden, f = m.intermediate, e = 128;
  const std::vector<int64_t> sizes = {m.heads * e * d,
                                      m.kv_heads * e * d,
                                      m.kv_heads * e * d,
                                      d * m.heads * e,
                                      f * d,
                                      f * d,
                                      d * f,
                                      d,
                                      d};
  std::vector<std::unique_ptr<bench::DeviceBuffer>> buffers;
  std::vector<AdamWTensor> tensors;
  int64_t numel = 0;
  for (int64_t n : sizes) {
    auto alloc = [&](size_t bytes, DType fill) {
      buffers.push_back(std::make_unique<bench::DeviceBuffer>(bytes));
      buffers.back()->Fill(fill, buffers.size());
      return buffers.back()->get();
    };
    AdamWTensor t{.param_dtype = param, .grad_dtype = DType::kF32, .numel = n};
    t.param = alloc(size_t(n) * SizeOf(param), param);
    t.grad = alloc(size_t(n) * 4, DType::kF32);
    t.exp_avg = alloc(size_t(n) * 4, DType::kF32);
    t.exp_avg_sq = alloc(size_t(n) * 4, DType::kF32);
    cudaMemset(t.exp_avg_sq, 0, size_t(n) * 4);  // second moments must be >= 0
    tensors.push_back(t);
    numel += n;
  }
  for (const auto& b : buffers) {
    if (!b->ok()) {
      state.SkipWithError("cudaMalloc failed (out of device memory?)");
      return;
    }
  }
  int64_t step = 0;
  const double s = bench::TimeLaunches(state, [&] {
    return LaunchAdamW(tensors, {.lr = 1e-4, .weight_decay = 0.1, .step = ++step}, nullptr);
  });
  bench::ReportBytes(state, double(numel) * double(2 * SizeOf(param) + 4 + 16), s);
  state.counters["params"] = double(numel);
}

void Register() {
  for (const Model& m : kModels) {
    for (DType p : {DType::kF32, DType::kBF16}) {
      const std::string name =
          absl::StrCat("AdamW/", m.name, "_layer/param:", DTypeName(p), "/grad:f32");
      benchmark::RegisterBenchmark(name.c_str(), BM_AdamW, m, p)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace
}  // namespace loom::cuda

int main(int argc, char** argv) {
  loom::cuda::Register();
  return loom::cuda::bench::BenchMain(argc, argv, "adamw_bench");
}
