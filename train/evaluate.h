// Evaluation of a causal LM: loss and perplexity over trainable tokens, and
// exact-match accuracy of greedy answers to prompts.
//
//   EvalResult r = Evaluate(model, tokenizer, val_examples, {.batch_size = 16});
//   printf("loss %.3f  ppl %.2f  accuracy %.1f%%\n", r.loss, r.perplexity, 100 * r.accuracy);
#ifndef LOOM_TRAIN_EVALUATE_H_
#define LOOM_TRAIN_EVALUATE_H_

#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "data/tokenizer.h"
#include "model/llama.h"

namespace loom {

struct EvalOptions {
  int64_t batch_size = 16;
  bool exact_match = true;     // decode prompt rows greedily
  int64_t max_new_tokens = 0;  // 0: the answer's length + 8
};

struct EvalResult {
  int64_t rows = 0;
  int64_t tokens = 0;         // trainable tokens scored
  double loss = 0;            // mean cross-entropy per trainable token
  double perplexity = 0;      // exp(loss)
  int64_t prompt_rows = 0;    // rows with a prompt and an answer
  int64_t exact_matches = 0;  // greedy output == answer (then EOS)
  double accuracy = 0;        // exact_matches / prompt_rows (0 if none)
};

// Runs without autograd, in the example order (deterministic).
EvalResult Evaluate(LlamaForCausalLM& model, const data::Tokenizer& tokenizer,
                    const std::vector<data::Example>& examples, const EvalOptions& options = {});

// Greedy continuation of each prompt until EOS or `max_new_tokens`: the
// generated ids (EOS excluded). Prompts are batched right-padded; each row
// reads its next-token logits at its own last position, so padding never
// changes a row's output.
std::vector<std::vector<int32_t>> GreedyDecode(LlamaForCausalLM& model,
                                               const std::vector<std::vector<int32_t>>& prompts,
                                               int64_t max_new_tokens, int32_t eos_id,
                                               int32_t pad_id, int64_t batch_size = 16);

}  // namespace loom

#endif  // LOOM_TRAIN_EVALUATE_H_
