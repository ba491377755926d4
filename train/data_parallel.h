// Plain data parallelism for the trainer until DDP and FSDP land: every rank holds the whole
// model and takes its own micro-batches (the trainer deals them: see Trainer::Create); token
// counts are summed before the backward
// (every rank divides by the global count, see "Loss normalization" in trainer.h) and
// gradients plus the loss are summed after it, so the update equals the single-rank update
// over the same global batch. All ranks get bit-identical summed gradients, so the replicas
// never drift apart.
//
//   DataParallel dp(mesh_dp_group);
//   auto trainer = Trainer::Create(config, &dp);
//
// A failed collective ends the process with the watchdog's report (the launcher then names
// the rank): a data-parallel step cannot be retried on one rank alone.
//
// Test hook: LOOM_TEST_FAIL_RANK=k and LOOM_TEST_FAIL_STEP=s make rank k abort at step s.
#ifndef LOOM_TRAIN_DATA_PARALLEL_H_
#define LOOM_TRAIN_DATA_PARALLEL_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "collectives/communicator.h"
#include "runtime/tensor.h"

namespace loom {

class DataParallel {
 public:
  explicit DataParallel(collectives::Communicator& group) : group_(group) {}

  int rank() const { return group_.rank(); }
  int size() const { return group_.size(); }
  // Only rank 0 writes metrics, checkpoints and the final model and prints progress.
  bool is_output_rank() const { return group_.rank() == 0; }

  // Sums the step's token counts over the group.
  void SumCounts(int64_t* trainable_tokens, int64_t* tokens);
  // Sums every parameter's gradient (one flat f32 bucket; a gradient missing on every rank
  // stays missing, as on one rank) and `loss_sum` over the group.
  void SumGradients(const std::vector<Tensor>& params, double* loss_sum);
  // Makes every replica start from rank 0's weights.
  void BroadcastParameters(const std::vector<Tensor>& params);
  // The LOOM_TEST_FAIL_* hook (see the file comment).
  void MaybeInjectFailure(int64_t step) const;

 private:
  // Prints the error and ends the process (see the file comment).
  void Check(const absl::Status& status, const char* what) const;

  collectives::Communicator& group_;
};

}  // namespace loom

#endif  // LOOM_TRAIN_DATA_PARALLEL_H_
