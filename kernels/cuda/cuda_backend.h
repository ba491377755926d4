// The kernel interface (runtime/backend.h) for CUDA tensors: every Backend
// method converted to a launch of the kernels in kernels/cuda.
//
//   // Linking //kernels/cuda:cuda_backend registers it for DeviceType::kCUDA, so
//   Tensor x = Tensor::Empty({4, 8}, DType::kBF16, Device::CUDA(0));
//   Tensor y = Silu(x);   // runs LaunchUnary on cuda:0's compute stream
//
// The same source is compiled twice: as loom::cuda::CudaBackend against the
// nvcc kernels (:cuda_backend; launches on the compute stream of
// runtime/cuda/stream.h, on the tensor's device) and as
// loom::cuda_emu::CudaBackend against the emulated kernels
// (:cuda_backend_emu; stream nullptr, every launch runs to completion on the
// CPU), which kernels/cuda/emulated_device.h installs for tests.
//
// Which kernel serves which method:
//   Copy Fill Unary Binary Affine PowScalar   elementwise.h (Copy is the cast kernel)
//   Reduce                                    reduce.h (f64 partial workspace)
//   Softmax(Backward)                         softmax.h
//   CrossEntropyForward/Backward              cross_entropy.h (vocabulary-chunk workspace)
//   EmbeddingForward/Backward                 embedding.h
//   Gemm                                      gemm.h, or cuBLASLt with LOOM_GEMM=cublaslt
//   AttentionForward/Backward                 attention.h (or cuDNN with LOOM_ATTENTION=cudnn)
//   RmsNorm*, Rope, SwiGlu*, AdamW            rmsnorm.h, rope.h, swiglu.h, adamw.h
//   RandomUniform/Normal                      random.h
// Scratch (workspaces, error flags) is allocated as device tensors. Like the
// CPU backend, a violated precondition aborts with a message naming the op;
// out-of-range labels and ids (which live on the device) are detected by the
// kernels and reported the same way after a read-back of one flag.
#ifndef LOOM_KERNELS_CUDA_CUDA_BACKEND_H_
#define LOOM_KERNELS_CUDA_CUDA_BACKEND_H_

#include <vector>

#include "kernels/cuda/device/namespace.h"
#include "runtime/backend.h"

namespace loom::LOOM_CUDA_NAMESPACE {

class CudaBackend final : public Backend {
 public:
  struct Options {
    // Fixed reduction order in the attention backward (bit-identical runs), at
    // some cost in speed. Every other kernel here is deterministic anyway.
    bool deterministic_attention = true;
  };

  CudaBackend() : CudaBackend(Options{}) {}
  explicit CudaBackend(const Options& options) : options_(options) {}

  DeviceType device_type() const override { return DeviceType::kCUDA; }

  void Copy(const Tensor& src, const Tensor& out) override;
  void Fill(const Tensor& out, double value) override;
  void Unary(UnaryOp op, const Tensor& x, const Tensor& out) override;
  void Binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void Affine(const Tensor& x, double alpha, double beta, const Tensor& out) override;
  void PowScalar(const Tensor& x, double exponent, const Tensor& out) override;
  void Reduce(ReduceOp op, const Tensor& x, const std::vector<bool>& reduce_dim,
              const Tensor& out) override;
  void Gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, double alpha, double beta,
            const Tensor& out) override;
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
  void SwiGluBackward(const Tensor& gate, const Tensor& up, const Tensor& gout, const Tensor& ggate,
                      const Tensor& gup) override;
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

 private:
  Options options_;
};

}  // namespace loom::LOOM_CUDA_NAMESPACE

#endif  // LOOM_KERNELS_CUDA_CUDA_BACKEND_H_
