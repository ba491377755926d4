#include "train/data_parallel.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "collectives/cpu_reduce.h"

namespace loom {

using collectives::ReduceOp;

void DataParallel::Check(const absl::Status& status, const char* what) const {
  if (status.ok()) return;
  std::fprintf(stderr, "train: rank %d: data parallel %s failed: %s\n", rank(), what,
               std::string(status.message()).c_str());
  std::fflush(stderr);
  _exit(1);
}

void DataParallel::SumCounts(int64_t* trainable_tokens, int64_t* tokens) {
  Tensor counts = Tensor::FromVector<int64_t>({*trainable_tokens, *tokens}, {2});
  Check(group_.AllReduce(counts, ReduceOp::kSum)->Wait(), "token count all-reduce");
  const int64_t* c = counts.data<int64_t>();
  *trainable_tokens = c[0];
  *tokens = c[1];
}

void DataParallel::SumGradients(const std::vector<Tensor>& params, double* loss_sum) {
  // One bucket: every gradient as f32 (zeros where missing), then one has-gradient flag per
  // parameter. The loss sum travels separately in f64.
  int64_t total = 0;
  for (const Tensor& p : params) total += p.numel();
  const int64_t n = int64_t(params.size());
  Tensor bucket = Tensor::Zeros({total + n}, DType::kF32);
  float* b = bucket.data<float>();
  int64_t offset = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor g = params[i].grad();
    if (g.defined()) {
      LOOM_CHECK(g.device().is_cpu() && g.is_contiguous(),
                 "data parallel: gradient of %s must be a contiguous CPU tensor", params[i].name());
      const std::vector<char> acc = collectives::ToAccumulator(g.dtype(), g.raw_data(), g.numel());
      LOOM_CHECK(collectives::AccumulatorDType(g.dtype()) == DType::kF32,
                 "data parallel: gradients must be f32, bf16 or f16, got %s",
                 std::string(DTypeName(g.dtype())));
      std::memcpy(b + offset, acc.data(), acc.size());
      b[total + int64_t(i)] = 1.0f;
    }
    offset += params[i].numel();
  }
  Check(group_.AllReduce(bucket, ReduceOp::kSum)->Wait(), "gradient all-reduce");
  Tensor loss = Tensor::FromVector<double>({*loss_sum}, {1});
  Check(group_.AllReduce(loss, ReduceOp::kSum)->Wait(), "loss all-reduce");
  *loss_sum = loss.data<double>()[0];
  offset = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    if (b[total + int64_t(i)] > 0) {
      Tensor g = p.grad();
      if (!g.defined()) {
        g = Tensor::Zeros(p.sizes(), p.impl()->autograd().grad_dtype.value_or(p.dtype()));
        p.set_grad(g);
      }
      collectives::FromAccumulator(g.dtype(), b + offset, g.raw_data(), g.numel());
    }
    offset += p.numel();
  }
}

void DataParallel::BroadcastParameters(const std::vector<Tensor>& params) {
  for (const Tensor& p : params) {
    Check(group_.Broadcast(p.Detach(), 0)->Wait(), "parameter broadcast");
  }
}

void DataParallel::MaybeInjectFailure(int64_t step) const {
  const char* r = std::getenv("LOOM_TEST_FAIL_RANK");
  const char* s = std::getenv("LOOM_TEST_FAIL_STEP");
  int fail_rank = -1;
  int64_t fail_step = -1;
  if (r == nullptr || s == nullptr || !absl::SimpleAtoi(r, &fail_rank) ||
      !absl::SimpleAtoi(s, &fail_step)) {
    return;
  }
  if (fail_rank == rank() && fail_step == step) {
    std::fprintf(stderr, "train: rank %d: LOOM_TEST_FAIL_STEP=%lld reached, aborting\n", rank(),
                 (long long)step);
    std::fflush(stderr);
    std::abort();
  }
}

}  // namespace loom
