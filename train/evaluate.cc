#include "train/evaluate.h"

#include <algorithm>
#include <cmath>

#include "data/collators.h"
#include "runtime/autograd/grad_mode.h"
#include "runtime/ops/loss.h"

namespace loom {

std::vector<std::vector<int32_t>> GreedyDecode(LlamaForCausalLM& model,
                                               const std::vector<std::vector<int32_t>>& prompts,
                                               int64_t max_new_tokens, int32_t eos_id,
                                               int32_t pad_id, int64_t batch_size) {
  NoGradGuard no_grad;
  std::vector<std::vector<int32_t>> out(prompts.size());
  const int64_t vocab = model.config().vocab_size;
  for (size_t first = 0; first < prompts.size(); first += size_t(batch_size)) {
    const size_t last = std::min(prompts.size(), first + size_t(batch_size));
    std::vector<std::vector<int32_t>> rows(prompts.begin() + first, prompts.begin() + last);
    std::vector<bool> done(rows.size(), false);
    for (int64_t step = 0; step < max_new_tokens; ++step) {
      // No KV cache yet: the whole prefix is recomputed each step, which is
      // fine for the short answers evaluation decodes.
      size_t width = 0;
      for (const auto& r : rows) width = std::max(width, r.size());
      std::vector<int64_t> ids(rows.size() * width, pad_id);
      for (size_t r = 0; r < rows.size(); ++r) {
        std::copy(rows[r].begin(), rows[r].end(), ids.begin() + r * width);
      }
      Tensor logits =
          model.Forward(Tensor::FromVector(ids, {int64_t(rows.size()), int64_t(width)}));
      const std::vector<float> l = logits.ToVector<float>();
      bool all_done = true;
      for (size_t r = 0; r < rows.size(); ++r) {
        if (done[r]) continue;
        const float* row = l.data() + (r * width + rows[r].size() - 1) * size_t(vocab);
        const int32_t next = int32_t(std::max_element(row, row + vocab) - row);
        if (next == eos_id) {
          done[r] = true;
          continue;
        }
        rows[r].push_back(next);
        out[first + r].push_back(next);
        all_done = false;
      }
      if (all_done) break;
    }
  }
  return out;
}

EvalResult Evaluate(LlamaForCausalLM& model, const data::Tokenizer& tokenizer,
                    const std::vector<data::Example>& examples, const EvalOptions& options) {
  NoGradGuard no_grad;
  EvalResult r;
  r.rows = int64_t(examples.size());
  double loss_sum = 0;
  for (size_t first = 0; first < examples.size(); first += size_t(options.batch_size)) {
    std::vector<const data::Example*> rows;
    for (size_t i = first; i < std::min(examples.size(), first + size_t(options.batch_size)); ++i) {
      rows.push_back(&examples[i]);
    }
    data::Batch b = data::Collate(rows, tokenizer.pad_id());
    if (b.num_trainable_tokens == 0) continue;
    LlamaInputs in{.position_ids = b.position_ids};
    loss_sum += CrossEntropy(model.Forward(b.input_ids, in), b.targets, Reduction::kSum).item();
    r.tokens += b.num_trainable_tokens;
  }
  if (r.tokens > 0) {
    r.loss = loss_sum / double(r.tokens);
    r.perplexity = std::exp(r.loss);
  }
  if (!options.exact_match) return r;

  std::vector<std::vector<int32_t>> prompts;
  std::vector<const data::Example*> prompt_rows;
  int64_t longest_answer = 0;
  for (const data::Example& e : examples) {
    if (e.prompt_len <= 0) continue;
    prompts.emplace_back(e.input_ids.begin(), e.input_ids.begin() + e.prompt_len);
    prompt_rows.push_back(&e);
    longest_answer = std::max(longest_answer, int64_t(tokenizer.Encode(e.answer).size()));
  }
  r.prompt_rows = int64_t(prompts.size());
  if (prompts.empty()) return r;
  const int64_t max_new = options.max_new_tokens > 0 ? options.max_new_tokens : longest_answer + 8;
  const std::vector<std::vector<int32_t>> outputs = GreedyDecode(
      model, prompts, max_new, tokenizer.eos_id(), tokenizer.pad_id(), options.batch_size);
  for (size_t i = 0; i < outputs.size(); ++i) {
    // An exact match must also stop: the output is the answer, then EOS.
    const bool stopped = int64_t(outputs[i].size()) < max_new;
    if (stopped && tokenizer.Decode(outputs[i]) == prompt_rows[i]->answer) ++r.exact_matches;
  }
  r.accuracy = double(r.exact_matches) / double(r.prompt_rows);
  return r;
}

}  // namespace loom
