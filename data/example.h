// One tokenized training example: token ids and their labels.
//
//   Example e{.input_ids = {1, 5, 6}, .labels = {kIgnoreIndex, 5, 6}};
#ifndef LOOM_DATA_EXAMPLE_H_
#define LOOM_DATA_EXAMPLE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace loom::data {

inline constexpr int32_t kIgnoreIndex = -100;

struct Example {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> labels;  // same length; kIgnoreIndex = not trained
  // Prompt rows only: input_ids[0, prompt_len) is the prompt (with BOS);
  // `answer` is the expected output text (without EOS). 0 otherwise.
  int64_t prompt_len = 0;
  std::string answer;
};

}  // namespace loom::data

#endif  // LOOM_DATA_EXAMPLE_H_
