// The CPU implementation of the kernel interface (runtime/backend.h).
//
// One file per op family, each with the same split as the CUDA kernels:
// elementwise.cc, reduce.cc, gemm.cc, softmax.cc, cross_entropy.cc,
// embedding.cc, rmsnorm.cc, rope.cc, swiglu.cc, attention.cc, adamw.cc,
// random.cc. All are multi-threaded with ParallelFor and deterministic for any
// thread count. 16-bit floats compute in f32; f64 computes in f64 (the
// finite-difference tests run in f64).
#ifndef LOOM_KERNELS_CPU_CPU_BACKEND_H_
#define LOOM_KERNELS_CPU_CPU_BACKEND_H_

#include "runtime/backend.h"

namespace loom::cpu {

class CpuBackend final : public Backend {
 public:
  DeviceType device_type() const override { return DeviceType::kCPU; }

  void Copy(const Tensor& src, const Tensor& out) override;
  void Fill(const Tensor& out, double value) override;
  void Unary(UnaryOp op, const Tensor& x, const Tensor& out) override;
  void Binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void Affine(const Tensor& x, double alpha, double beta, const Tensor& out) override;
  void PowScalar(const Tensor& x, double exponent, const Tensor& out) override;
  void Reduce(ReduceOp op, const Tensor& x, const std::vector<bool>& reduce_dim,
              const Tensor& out) override;
  void Gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha,
            double beta, const Tensor& out) override;
  void Softmax(const Tensor& x, bool log, const Tensor& out) override;
  void SoftmaxBackward(const Tensor& y, const Tensor& gy, bool log, const Tensor& gx) override;
  void CrossEntropyForward(const Tensor& logits, const Tensor& labels, int64_t ignore_index,
                           const Tensor& losses, const Tensor& lse) override;
  void CrossEntropyBackward(const Tensor& logits, const Tensor& labels, const Tensor& lse,
                            const Tensor& grad_losses, int64_t ignore_index,
                            const Tensor& glogits) override;
  void EmbeddingForward(const Tensor& weight, const Tensor& ids, const Tensor& out) override;
  void EmbeddingBackward(const Tensor& grad_out, const Tensor& ids,
                         const Tensor& grad_weight) override;
  void RmsNormForward(const Tensor& x, const Tensor& w, double eps, const Tensor& y,
                      const Tensor& rstd) override;
  void RmsNormBackward(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                       const Tensor& gx, const Tensor& gw) override;
  void Rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq, bool inverse,
            const Tensor& out) override;
  void SwiGluForward(const Tensor& gate, const Tensor& up, const Tensor& out) override;
  void SwiGluBackward(const Tensor& gate, const Tensor& up, const Tensor& gout,
                      const Tensor& ggate, const Tensor& gup) override;
  void AttentionForward(const Tensor& q, const Tensor& k, const Tensor& v,
                        const AttentionParams& params, const Tensor& out,
                        const Tensor& lse) override;
  void AttentionBackward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                         const Tensor& lse, const Tensor& gout, const AttentionParams& params,
                         const Tensor& gq, const Tensor& gk, const Tensor& gv) override;
  void AdamW(absl::Span<const Tensor> params, absl::Span<const Tensor> grads,
             absl::Span<const Tensor> exp_avgs, absl::Span<const Tensor> exp_avg_sqs,
             const AdamWParams& p) override;
  void RandomUniform(const Tensor& out, uint64_t seed, uint64_t offset, double low,
                     double high) override;
  void RandomNormal(const Tensor& out, uint64_t seed, uint64_t offset, double mean,
                    double stddev) override;
};

}  // namespace loom::cpu

#endif  // LOOM_KERNELS_CPU_CPU_BACKEND_H_
