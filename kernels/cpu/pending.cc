// Temporary: kernel families whose CPU implementation is being written in
// parallel. Each moves to its own file; this file must be deleted before the
// foundation lands.
#include "kernels/cpu/cpu_backend.h"

namespace loom::cpu {
#define LOOM_PENDING(name) LOOM_CHECK(false, "CPU kernel %s is being written", name)
void CpuBackend::Gemm(const Tensor&, bool, const Tensor&, bool, double, double, const Tensor&) { LOOM_PENDING("Gemm"); }
void CpuBackend::Softmax(const Tensor&, bool, const Tensor&) { LOOM_PENDING("Softmax"); }
void CpuBackend::SoftmaxBackward(const Tensor&, const Tensor&, bool, const Tensor&) { LOOM_PENDING("SoftmaxBackward"); }
void CpuBackend::CrossEntropyForward(const Tensor&, const Tensor&, int64_t, const Tensor&, const Tensor&) { LOOM_PENDING("CE"); }
void CpuBackend::CrossEntropyBackward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, const Tensor&) { LOOM_PENDING("CE"); }
void CpuBackend::EmbeddingForward(const Tensor&, const Tensor&, const Tensor&) { LOOM_PENDING("Embedding"); }
void CpuBackend::EmbeddingBackward(const Tensor&, const Tensor&, const Tensor&) { LOOM_PENDING("Embedding"); }
void CpuBackend::RmsNormForward(const Tensor&, const Tensor&, double, const Tensor&, const Tensor&) { LOOM_PENDING("RmsNorm"); }
void CpuBackend::RmsNormBackward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) { LOOM_PENDING("RmsNorm"); }
void CpuBackend::Rope(const Tensor&, const Tensor&, const Tensor&, bool, const Tensor&) { LOOM_PENDING("Rope"); }
void CpuBackend::SwiGluForward(const Tensor&, const Tensor&, const Tensor&) { LOOM_PENDING("SwiGlu"); }
void CpuBackend::SwiGluBackward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) { LOOM_PENDING("SwiGlu"); }
void CpuBackend::AttentionForward(const Tensor&, const Tensor&, const Tensor&, const AttentionParams&, const Tensor&, const Tensor&) { LOOM_PENDING("Attention"); }
void CpuBackend::AttentionBackward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const AttentionParams&, const Tensor&, const Tensor&, const Tensor&) { LOOM_PENDING("Attention"); }
void CpuBackend::AdamW(absl::Span<const Tensor>, absl::Span<const Tensor>, absl::Span<const Tensor>, absl::Span<const Tensor>, const AdamWParams&) { LOOM_PENDING("AdamW"); }
}  // namespace loom::cpu
