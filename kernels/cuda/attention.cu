// LaunchAttention*: validation, workspace layout and the choice between the
// tensor-core (FlashAttention-2) and SIMT kernels (see attention.h).
#include <string>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_internal.h"
#include "runtime/status.h"

namespace loom::LOOM_CUDA_NAMESPACE {
namespace attn {
namespace {

absl::Status Invalid(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("attention: ", what));
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
bool Mult8(const BthStrides& s) { return s.batch % 8 == 0 && s.token % 8 == 0 && s.head % 8 == 0; }

size_t AccBytes(DType dtype) { return dtype == DType::kF64 ? 8 : 4; }
size_t RoundUp(size_t n) { return (n + 255) / 256 * 256; }

absl::Status Validate(const AttentionProblem& p) {
  if (p.dtype != DType::kBF16 && p.dtype != DType::kF16 && p.dtype != DType::kF32 &&
      p.dtype != DType::kF64) {
    return Invalid(absl::StrCat("dtype ", DTypeName(p.dtype), " is not bf16, f16, f32 or f64"));
  }
  if (p.batch < 1 || p.seqlen_q < 0 || p.seqlen_k < 0 || p.heads < 1 || p.kv_heads < 1 ||
      p.head_dim < 1) {
    return Invalid(absl::StrCat("batch ", p.batch, ", seqlen_q ", p.seqlen_q, ", seqlen_k ",
                                p.seqlen_k, ", heads ", p.heads, ", kv_heads ", p.kv_heads,
                                ", head_dim ", p.head_dim, " (all positive, lengths >= 0)"));
  }
  if (p.heads % p.kv_heads != 0) {
    return Invalid(absl::StrCat("heads ", p.heads, " is not a multiple of kv_heads ", p.kv_heads));
  }
  if (p.head_dim > 256 && !FlashEligible(p)) {
    return Invalid(absl::StrCat("head_dim ", p.head_dim, " > 256 is not supported"));
  }
  if ((p.cu_seqlens_q == nullptr) != (p.cu_seqlens_k == nullptr)) {
    return Invalid("cu_seqlens_q and cu_seqlens_k must be given together");
  }
  if (p.cu_seqlens_q != nullptr &&
      (p.batch != 1 || p.num_seqs < 1 || p.max_seqlen_q < 0 || p.max_seqlen_k < 0)) {
    return Invalid(absl::StrCat("varlen needs batch 1 (got ", p.batch, "), num_seqs >= 1 (got ",
                                p.num_seqs, ") and max_seqlen_q/k >= 0"));
  }
  if (p.seqlen_q > 0 && (p.q == nullptr || p.out == nullptr || p.lse == nullptr)) {
    return Invalid("q, out and lse must be set");
  }
  if (p.seqlen_k > 0 && (p.k == nullptr || p.v == nullptr)) return Invalid("k and v must be set");
  return absl::OkStatus();
}

}  // namespace

bool FlashEligible(const AttentionProblem& p) {
  return (p.dtype == DType::kBF16 || p.dtype == DType::kF16) &&
         (p.head_dim == 64 || p.head_dim == 128) && Aligned16(p.q) && Aligned16(p.k) &&
         Aligned16(p.v) && Aligned16(p.out) && Mult8(p.q_strides) && Mult8(p.k_strides) &&
         Mult8(p.v_strides) && Mult8(p.out_strides);
}

DeviceProblem MakeDeviceProblem(const AttentionProblem& p, const AttentionBackwardProblem* bwd) {
  DeviceProblem d{};
  d.q = p.q;
  d.k = p.k;
  d.v = p.v;
  d.out = p.out;
  d.lse = p.lse;
  d.qs = p.q_strides;
  d.ks = p.k_strides;
  d.vs = p.v_strides;
  d.os = p.out_strides;
  d.seqlen_q = p.seqlen_q;
  d.seqlen_k = p.seqlen_k;
  d.heads = int(p.heads);
  d.kv_heads = int(p.kv_heads);
  d.cu_q = p.cu_seqlens_q;
  d.cu_k = p.cu_seqlens_k;
  d.scale = p.scale != 0.0 ? p.scale : 1.0 / std::sqrt(double(p.head_dim));
  d.scale_log2 = float(d.scale * 1.4426950408889634);
  if (bwd != nullptr) {
    d.gout = bwd->gout;
    d.gq = bwd->gq;
    d.gk = bwd->gk;
    d.gv = bwd->gv;
    d.gos = p.out_strides;
    d.gqs = p.q_strides;
    d.gks = p.k_strides;
    d.gvs = p.v_strides;
    char* w = static_cast<char*>(bwd->workspace);
    const size_t rows = size_t(p.batch * p.heads * p.seqlen_q);
    d.dsum = w;
    if (FlashEligible(p)) d.dq_accum = reinterpret_cast<float*>(w + RoundUp(rows * 4));
  }
  return d;
}

}  // namespace attn

size_t AttentionBackwardWorkspaceBytes(const AttentionProblem& p) {
  const size_t rows = size_t(p.batch * p.heads * p.seqlen_q);
  size_t bytes = attn::RoundUp(rows * attn::AccBytes(p.dtype));
  if (attn::FlashEligible(p)) bytes += attn::RoundUp(rows * size_t(p.head_dim) * 4);
  return bytes;
}

absl::Status LaunchAttentionForward(const AttentionProblem& p, cudaStream_t stream) {
  LOOM_RETURN_IF_ERROR(attn::Validate(p));
  if (p.seqlen_q == 0) return absl::OkStatus();
  const attn::DeviceProblem d = attn::MakeDeviceProblem(p, nullptr);
  return attn::FlashEligible(p) ? attn::LaunchFlashForward(p, d, stream)
                                : attn::LaunchSimtForward(p, d, stream);
}

absl::Status LaunchAttentionBackward(const AttentionBackwardProblem& b, cudaStream_t stream) {
  const AttentionProblem& p = b.fwd;
  LOOM_RETURN_IF_ERROR(attn::Validate(p));
  if (p.seqlen_q == 0 && p.seqlen_k == 0) return absl::OkStatus();
  if ((p.seqlen_q > 0 && (b.gout == nullptr || b.gq == nullptr)) ||
      (p.seqlen_k > 0 && (b.gk == nullptr || b.gv == nullptr))) {
    return attn::Invalid("gout, gq, gk and gv must be set");
  }
  if (b.workspace == nullptr && AttentionBackwardWorkspaceBytes(p) > 0) {
    return attn::Invalid("workspace is null (see AttentionBackwardWorkspaceBytes)");
  }
  const attn::DeviceProblem d = attn::MakeDeviceProblem(p, &b);
  return attn::FlashEligible(p) ? attn::LaunchFlashBackward(b, d, stream)
                                : attn::LaunchSimtBackward(b, d, stream);
}

}  // namespace loom::LOOM_CUDA_NAMESPACE
