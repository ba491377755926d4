// Fused cross-entropy benchmark over the Llama-3 vocabulary (128256), bf16
// logits of 4096 and 16384 tokens, forward (lse and losses) and backward
// (the logits gradient).
//
//   bazel run -c opt //kernels/cuda:cross_entropy_bench
//
// GB/s counts the logits once in the forward, logits + gradient in the backward.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/bench_util.h"
#include "kernels/cuda/cross_entropy.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/random.h"

namespace loom::cuda {
namespace {

constexpr int64_t kVocab = 128256;

void BM_CrossEntropy(benchmark::State& state, int64_t rows, bool backward) {
  const size_t logit_bytes = size_t(rows * kVocab) * 2;
  bench::DeviceBuffer logits(logit_bytes), glogits(backward ? logit_bytes : 0),
      labels(size_t(rows) * 8), uniform(size_t(rows) * 4), lse(size_t(rows) * 4),
      losses(size_t(rows) * 4), grad(size_t(rows) * 4);
  if (!logits.ok() || !glogits.ok() || !labels.ok()) {
    state.SkipWithError("cudaMalloc failed (out of device memory?)");
    return;
  }
  logits.Fill(DType::kBF16, 1);
  grad.Fill(DType::kF32, 2);
  // Labels in [0, V): uniform floats truncated by the cast to i64.
  const std::vector<int64_t> sizes = {rows}, strides = {1};
  (void)LaunchRandomUniform(uniform.get(), DType::kF32, rows, 3, 0, 0.0, double(kVocab) - 1,
                            nullptr);
  (void)LaunchCopy(sizes, {uniform.get(), DType::kF32, strides},
                   {labels.get(), DType::kI64, strides}, nullptr);
  const CrossEntropyProblem p{.dtype = DType::kBF16,
                              .rows = rows,
                              .vocab = kVocab,
                              .logits = logits.get(),
                              .labels = static_cast<const int64_t*>(labels.get())};
  bench::DeviceBuffer workspace(CrossEntropyWorkspaceBytes(p));
  double s = 0;
  if (backward) {
    s = bench::TimeLaunches(state, [&] {
      return LaunchCrossEntropyBackward(p, lse.get(), grad.get(), glogits.get(), nullptr);
    });
  } else {
    s = bench::TimeLaunches(state, [&] {
      return LaunchCrossEntropyForward(p, losses.get(), lse.get(), workspace.get(), nullptr);
    });
  }
  bench::ReportBytes(state, (backward ? 2.0 : 1.0) * double(logit_bytes), s);
}

void Register() {
  for (int64_t rows : {4096, 16384}) {
    for (bool backward : {false, true}) {
      const std::string name =
          absl::StrCat("CrossEntropy/", backward ? "bwd" : "fwd", "/V:", kVocab, "/N:", rows);
      benchmark::RegisterBenchmark(name.c_str(), BM_CrossEntropy, rows, backward)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace loom::cuda

int main(int argc, char** argv) {
  loom::cuda::Register();
  return loom::cuda::bench::BenchMain(argc, argv, "cross_entropy_bench");
}
