// Attention benchmark: causal self-attention of Llama-3 8B (32 heads) and 70B
// (64 heads; both 8 KV heads of 128) at sequence lengths 1k-16k with 16k
// tokens per batch, bf16, forward and backward, our kernels side by side with
// cuDNN.
//
//   bazel run -c opt //kernels/cuda:attention_bench -- --benchmark_filter=fwd
//
// FLOP per forward: 4 * B * H * E * (visible query-key pairs), i.e. the two
// matmuls over the causal triangle; the backward counts 2.5x the forward
// (FlashAttention-2's convention, five matmuls instead of two), fwd+bwd 3.5x.
// The goal is forward+backward at FlashAttention-2's published H100 level
// (about 330 TFLOP/s at head dim 128): the fwd+bwd rows.
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/bench_util.h"
#include "kernels/cuda/kernel_select.h"
#include "runtime/status.h"

namespace loom::cuda {
namespace {

struct Model {
  const char* name;
  int64_t heads, kv_heads;
};
const Model kModels[] = {{"8B", 32, 8}, {"70B", 64, 8}};
constexpr int64_t kHeadDim = 128, kTokens = 16384;

enum class Pass { kForward, kBackward, kBoth };

void BM_Attention(benchmark::State& state, Model m, int64_t seqlen, Pass pass, AttentionImpl impl) {
  const int64_t b = kTokens / seqlen, h = m.heads, g = m.kv_heads, e = kHeadDim;
  const size_t q_bytes = size_t(b * seqlen * h * e) * 2, kv_bytes = size_t(b * seqlen * g * e) * 2;
  bench::DeviceBuffer q(q_bytes), k(kv_bytes), v(kv_bytes), out(q_bytes),
      lse(size_t(b * h * seqlen) * 4), gout(q_bytes), gq(q_bytes), gk(kv_bytes), gv(kv_bytes);
  if (!q.ok() || !k.ok() || !v.ok() || !out.ok() || !lse.ok() || !gout.ok() || !gq.ok() ||
      !gk.ok() || !gv.ok()) {
    state.SkipWithError("cudaMalloc failed (out of device memory?)");
    return;
  }
  q.Fill(DType::kBF16, 1);
  k.Fill(DType::kBF16, 2);
  v.Fill(DType::kBF16, 3);
  gout.Fill(DType::kBF16, 4);
  const AttentionProblem p{.dtype = DType::kBF16,
                           .batch = b,
                           .seqlen_q = seqlen,
                           .seqlen_k = seqlen,
                           .heads = h,
                           .kv_heads = g,
                           .head_dim = e,
                           .q = q.get(),
                           .k = k.get(),
                           .v = v.get(),
                           .q_strides = {seqlen * h * e, h * e, e},
                           .k_strides = {seqlen * g * e, g * e, e},
                           .v_strides = {seqlen * g * e, g * e, e},
                           .out = out.get(),
                           .out_strides = {seqlen * h * e, h * e, e},
                           .lse = lse.get(),
                           .causal = true};
  const double pairs = double(seqlen) * double(seqlen + 1) / 2;
  const double fwd_flops = 4.0 * double(b * h * e) * pairs;
  if (pass == Pass::kForward) {
    const double s =
        bench::TimeLaunches(state, [&] { return LaunchAttentionForwardWith(impl, p, nullptr); });
    bench::ReportFlops(state, fwd_flops, s);
    return;
  }
  if (absl::Status s = LaunchAttentionForwardWith(impl, p, nullptr); !s.ok()) {
    state.SkipWithError(std::string(s.message()).c_str());
    return;
  }
  bench::DeviceBuffer workspace(AttentionBackwardWorkspaceBytesWith(impl, p));
  const AttentionBackwardProblem bp{.fwd = p,
                                    .gout = gout.get(),
                                    .gq = gq.get(),
                                    .gk = gk.get(),
                                    .gv = gv.get(),
                                    .workspace = workspace.get()};
  if (pass == Pass::kBackward) {
    const double s =
        bench::TimeLaunches(state, [&] { return LaunchAttentionBackwardWith(impl, bp, nullptr); });
    bench::ReportFlops(state, 2.5 * fwd_flops, s);
    return;
  }
  // A training step's attention: forward then backward (the goal's figure).
  const double s = bench::TimeLaunches(state, [&] {
    LOOM_RETURN_IF_ERROR(LaunchAttentionForwardWith(impl, p, nullptr));
    return LaunchAttentionBackwardWith(impl, bp, nullptr);
  });
  bench::ReportFlops(state, 3.5 * fwd_flops, s);
}

void Register() {
  for (const Model& m : kModels) {
    for (int64_t seqlen : {1024, 2048, 4096, 8192, 16384}) {
      for (Pass pass : {Pass::kForward, Pass::kBackward, Pass::kBoth}) {
        for (AttentionImpl impl : {AttentionImpl::kLoom, AttentionImpl::kCudnn}) {
          const char* pass_name = pass == Pass::kForward    ? "fwd"
                                  : pass == Pass::kBackward ? "bwd"
                                                            : "fwd+bwd";
          const std::string name =
              absl::StrCat("Attention/", m.name, "/", pass_name, "/T:", seqlen,
                           "/B:", kTokens / seqlen, "/", AttentionImplName(impl));
          benchmark::RegisterBenchmark(name.c_str(), BM_Attention, m, seqlen, pass, impl)
              ->UseManualTime()
              ->Unit(benchmark::kMillisecond);
        }
      }
    }
  }
}

}  // namespace
}  // namespace loom::cuda

int main(int argc, char** argv) {
  loom::cuda::Register();
  return loom::cuda::bench::BenchMain(argc, argv, "attention_bench");
}
