// The kernel interface every device implements, and the one place ops
// dispatch by device.
//
// Ops in runtime/ops/ validate arguments, allocate outputs, call the Backend
// of the inputs' device and record autograd history. A Backend only computes:
// it receives already-validated tensors and writes into `out` arguments that
// the caller allocated with the documented shapes. kernels/cpu implements it
// for the CPU; kernels/cuda for CUDA devices.
//
// Shape legend: N rows, D feature dim, B batch, T query tokens, S key tokens,
// H query heads, G kv heads (H % G == 0), E head dim, V vocabulary.
//
// Statistics saved for backward (losses, lse, rstd) are f32, or f64 when the
// inputs are f64 (the finite-difference tests run in f64): the "stat dtype".
#ifndef LOOM_RUNTIME_BACKEND_H_
#define LOOM_RUNTIME_BACKEND_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "runtime/device.h"
#include "runtime/tensor.h"

namespace loom {

enum class UnaryOp : uint8_t {
  kNeg, kExp, kLog, kSqrt, kRsqrt, kAbs, kSigmoid, kSilu, kTanh, kSquare, kReciprocal,
  kRelu, kSin, kCos,
};

enum class BinaryOp : uint8_t {
  kAdd, kSub, kMul, kDiv, kMaximum, kMinimum, kPow,
  // grad_x of silu(x) given (grad, x): grad * s * (1 + x * (1 - s)), s = sigmoid(x).
  kSiluBackward,
  // Comparisons write 1 or 0 in out's dtype.
  kEq, kLt, kGt,
};

enum class ReduceOp : uint8_t { kSum, kMean, kMax, kMin, kSumSquares };

struct AttentionParams {
  bool causal = true;
  double scale = 0;  // softmax scale; the op fills in 1/sqrt(E) when 0
  // Packed rows: sequence boundaries over the flattened B*T (queries) and
  // B*S (keys) token axes, i32 [num_seqs + 1], starting at 0 and ending at
  // B*T (B*S). Undefined tensors mean each batch row is one sequence.
  Tensor cu_seqlens_q;
  Tensor cu_seqlens_k;
  // Causal masking is bottom-right aligned per sequence (as FlashAttention-2):
  // query i of a sequence with Tq queries and Tk keys sees keys j <= i + Tk - Tq.
};

struct AdamWParams {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  int64_t step = 1;  // 1-based, after increment, for bias correction
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual DeviceType device_type() const = 0;

  // ---- Memory and elementwise. `src`/`a`/`b` have out's shape (broadcast
  // inputs arrive as expanded views with stride 0); any strides.
  // out = cast(src), any dtypes.
  virtual void Copy(const Tensor& src, const Tensor& out) = 0;
  virtual void Fill(const Tensor& out, double value) = 0;
  virtual void Unary(UnaryOp op, const Tensor& x, const Tensor& out) = 0;
  virtual void Binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // out = alpha * x + beta.
  virtual void Affine(const Tensor& x, double alpha, double beta, const Tensor& out) = 0;
  // out = x ^ exponent.
  virtual void PowScalar(const Tensor& x, double exponent, const Tensor& out) = 0;

  // ---- Reductions. `out` has x's rank with size 1 on every reduced dim
  // (`reduce_dim[d]` true). Accumulates in f64, in blocks of a fixed size
  // combined in a fixed order: results do not depend on the thread count.
  // `out` may have another dtype than x (f64 for norms).
  virtual void Reduce(ReduceOp op, const Tensor& x, const std::vector<bool>& reduce_dim,
                      const Tensor& out) = 0;

  // ---- Matrix products. a [Ba, M, K] (or [Ba, K, M] if trans_a),
  // b [Bb, K, N] (or [Bb, N, K] if trans_b), out [B, M, N] with Ba, Bb in
  // {1, B} (1 means shared across the batch). Each operand's last dim has
  // stride 1; batch and row strides are arbitrary.
  // out = alpha * op(a) @ op(b) + beta * out.
  virtual void Gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
                    double beta, const Tensor& out) = 0;

  // ---- Softmax over the last dim of contiguous x [N, D].
  virtual void Softmax(const Tensor& x, bool log, const Tensor& out) = 0;
  // gx from y = softmax(x) (or log_softmax when log) and gy.
  virtual void SoftmaxBackward(const Tensor& y, const Tensor& gy, bool log, const Tensor& gx) = 0;

  // ---- Cross-entropy. logits [N, V] contiguous, labels i64 [N].
  // losses [N] (0 where label == ignore_index) and lse [N] in the stat dtype.
  virtual void CrossEntropyForward(const Tensor& logits, const Tensor& labels,
                                   int64_t ignore_index, const Tensor& losses,
                                   const Tensor& lse) = 0;
  // glogits [N, V] = grad_losses[n] * (softmax(logits[n]) - onehot(label)), 0 at ignored rows.
  virtual void CrossEntropyBackward(const Tensor& logits, const Tensor& labels,
                                    const Tensor& lse, const Tensor& grad_losses,
                                    int64_t ignore_index, const Tensor& glogits) = 0;

  // ---- Embedding. weight [V, D], ids i32/i64 [N], out [N, D].
  virtual void EmbeddingForward(const Tensor& weight, const Tensor& ids, const Tensor& out) = 0;
  // grad_weight [V, D] += rows of grad_out [N, D] scattered by ids (deterministic).
  virtual void EmbeddingBackward(const Tensor& grad_out, const Tensor& ids,
                                 const Tensor& grad_weight) = 0;

  // ---- RMSNorm over the last dim: y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps).
  // x, y [N, D]; w [D]; rstd [N] in the stat dtype.
  virtual void RmsNormForward(const Tensor& x, const Tensor& w, double eps, const Tensor& y,
                              const Tensor& rstd) = 0;
  // gw [D] is overwritten (not accumulated).
  virtual void RmsNormBackward(const Tensor& gy, const Tensor& x, const Tensor& w,
                               const Tensor& rstd, const Tensor& gx, const Tensor& gw) = 0;

  // ---- RoPE, Hugging Face Llama convention (rotate_half): for pair i < E/2,
  // angle = position * inv_freq[i] (inv_freq f32, or f64 for f64 x),
  // (x[i], x[i+E/2]) rotated by angle
  // (by -angle when `inverse`, which is the backward).
  // x, out [B, T, H, E]; positions i64 [B, T]; inv_freq [E/2].
  virtual void Rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                    bool inverse, const Tensor& out) = 0;

  // ---- SwiGLU: out = silu(gate) * up, all [N, F].
  virtual void SwiGluForward(const Tensor& gate, const Tensor& up, const Tensor& out) = 0;
  virtual void SwiGluBackward(const Tensor& gate, const Tensor& up, const Tensor& gout,
                              const Tensor& ggate, const Tensor& gup) = 0;

  // ---- Attention. q [B, T, H, E], k and v [B, S, G, E], out [B, T, H, E],
  // lse [B, H, T] in the stat dtype (log-sum-exp of the scaled scores; -inf for a query
  // that sees no key, whose output is 0).
  virtual void AttentionForward(const Tensor& q, const Tensor& k, const Tensor& v,
                                const AttentionParams& params, const Tensor& out,
                                const Tensor& lse) = 0;
  virtual void AttentionBackward(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const Tensor& out, const Tensor& lse, const Tensor& gout,
                                 const AttentionParams& params, const Tensor& gq,
                                 const Tensor& gk, const Tensor& gv) = 0;

  // ---- Optimizer. One AdamW step per tensor, in place (decoupled weight
  // decay, bias correction). grads may be of another float dtype than params.
  virtual void AdamW(absl::Span<const Tensor> params, absl::Span<const Tensor> grads,
                     absl::Span<const Tensor> exp_avgs, absl::Span<const Tensor> exp_avg_sqs,
                     const AdamWParams& p) = 0;

  // ---- Random. Element i of a contiguous `out` gets the value of counter
  // (offset + i) of Philox4x32-10 keyed by seed, so every device produces the
  // same numbers for the same (seed, offset).
  virtual void RandomUniform(const Tensor& out, uint64_t seed, uint64_t offset, double low,
                             double high) = 0;
  virtual void RandomNormal(const Tensor& out, uint64_t seed, uint64_t offset, double mean,
                            double stddev) = 0;
};

// The dtype of statistics saved for backward (see the file comment).
inline DType StatDTypeOf(DType input) { return input == DType::kF64 ? DType::kF64 : DType::kF32; }

// The backend of `device`; aborts with a clear message if none is registered.
Backend& GetBackend(Device device);
bool HasBackend(DeviceType type);
// Called once per device type at static-initialization time by kernels/*.
void RegisterBackend(DeviceType type, Backend* backend);

}  // namespace loom

#endif  // LOOM_RUNTIME_BACKEND_H_
