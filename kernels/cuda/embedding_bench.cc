// Embedding benchmark: the Llama-3 token embedding (128256 x 4096 for 8B,
// x 8192 for 70B, bf16) for 4096 and 16384 tokens: the forward gather and the
// deterministic backward scatter-add into an f32 gradient.
//
//   bazel run -c opt //kernels/cuda:embedding_bench
//
// GB/s counts the rows moved: forward reads and writes N rows of D bf16;
// backward reads N rows of bf16 and reads and writes N rows of f32.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/bench_util.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/random.h"

namespace loom::cuda {
namespace {

constexpr int64_t kVocab = 128256;

void BM_Embedding(benchmark::State& state, int64_t rows, int64_t dim, bool backward) {
  bench::DeviceBuffer weight(size_t(kVocab * dim) * (backward ? 4 : 2)),
      acts(size_t(rows * dim) * 2), ids(size_t(rows) * 8), uniform(size_t(rows) * 4);
  if (!weight.ok() || !acts.ok() || !ids.ok()) {
    state.SkipWithError("cudaMalloc failed (out of device memory?)");
    return;
  }
  weight.Fill(backward ? DType::kF32 : DType::kBF16, 1);
  acts.Fill(DType::kBF16, 2);
  const std::vector<int64_t> sizes = {rows}, strides = {1};
  (void)LaunchRandomUniform(uniform.get(), DType::kF32, rows, 3, 0, 0.0, double(kVocab) - 1,
                            nullptr);
  (void)LaunchCopy(sizes, {uniform.get(), DType::kF32, strides}, {ids.get(), DType::kI64, strides},
                   nullptr);
  const EmbeddingProblem p{
      .rows = rows, .vocab = kVocab, .dim = dim, .ids = ids.get(), .ids_dtype = DType::kI64};
  double s = 0;
  if (backward) {
    s = bench::TimeLaunches(state, [&] {
      return LaunchEmbeddingBackward(p, DType::kBF16, acts.get(), DType::kF32, weight.get(),
                                     nullptr);
    });
  } else {
    s = bench::TimeLaunches(state, [&] {
      return LaunchEmbeddingForward(p, DType::kBF16, weight.get(), acts.get(), nullptr);
    });
  }
  const double row_elems = double(rows * dim);
  bench::ReportBytes(state, backward ? row_elems * (2 + 4 + 4) : row_elems * (2 + 2), s);
}

void Register() {
  for (int64_t dim : {4096, 8192}) {
    for (int64_t rows : {4096, 16384}) {
      for (bool backward : {false, true}) {
        const std::string name =
            absl::StrCat("Embedding/", backward ? "bwd" : "fwd", "/D:", dim, "/N:", rows);
        benchmark::RegisterBenchmark(name.c_str(), BM_Embedding, rows, dim, backward)
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
  return loom::cuda::bench::BenchMain(argc, argv, "embedding_bench");
}
