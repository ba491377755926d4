// Evaluates a saved model (ours or any Hugging Face Llama folder) on a jsonl
// set: loss and perplexity over trainable tokens, and exact-match accuracy of
// greedy answers for rows with a prompt and an answer (alpaca fields).
//
//   # The training config's test set, in its prompt format:
//   bazel run //tools:eval -- --model=outputs/tiny --config=examples/tiny/train.yaml
//   # Any jsonl file (the format inferred, or given by --type / --format):
//   bazel run //tools:eval -- --model=outputs/tiny --data=rows.jsonl --format='{instruction}\n'

#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "model/pretrained.h"
#include "nlohmann/json.hpp"
#include "runtime/parallel.h"
#include "train/config.h"
#include "train/evaluate.h"

ABSL_FLAG(std::string, model, "", "Hugging Face model folder (config.json + safetensors)");
ABSL_FLAG(std::string, data, "", "jsonl file in a training format (text, input_ids, alpaca)");
ABSL_FLAG(std::string, type, "", "row format: completion | pretokenized | alpaca ('' = infer)");
ABSL_FLAG(std::string, format, "",
          "a custom prompt format for instruction/output rows, e.g. '{instruction}\\n'");
ABSL_FLAG(std::string, config, "",
          "a training config: its test_datasets (or, with --data, its dataset format), "
          "sequence_len and train_on_inputs");
ABSL_FLAG(int64_t, sequence_len, 2048, "rows longer than this are skipped (and counted)");
ABSL_FLAG(int64_t, batch_size, 16, "rows per forward pass");
ABSL_FLAG(int64_t, max_new_tokens, 0, "greedy decoding limit; 0 = answer length + 8");
ABSL_FLAG(int, threads, 0, "CPU threads (0 = all cores)");
ABSL_FLAG(bool, json, false, "print the result as one JSON object");

namespace loom {
namespace {

int Main() {
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd != nullptr) {
    if (chdir(wd) != 0) std::fprintf(stderr, "eval: cannot enter %s\n", wd);
  }
  const std::string config_path = absl::GetFlag(FLAGS_config), data = absl::GetFlag(FLAGS_data);
  if (absl::GetFlag(FLAGS_model).empty() || (data.empty() && config_path.empty())) {
    std::fprintf(stderr,
                 "eval: --model=DIR and --data=FILE.jsonl or --config=FILE.yaml are "
                 "required\n");
    return 2;
  }
  if (absl::GetFlag(FLAGS_threads) > 0) SetNumThreads(absl::GetFlag(FLAGS_threads));
  absl::StatusOr<std::unique_ptr<LlamaForCausalLM>> model =
      LoadPretrainedLlama(absl::GetFlag(FLAGS_model));
  if (!model.ok()) {
    std::fprintf(stderr, "eval: %s\n", std::string(model.status().message()).c_str());
    return 2;
  }

  // What to read, and how to tokenize it.
  std::vector<data::DatasetSpec> specs;
  data::TokenizeOptions options{.sequence_len = absl::GetFlag(FLAGS_sequence_len),
                                .vocab_size = (*model)->config().vocab_size};
  if (!config_path.empty()) {
    absl::StatusOr<TrainConfig> config = LoadTrainConfig(config_path);
    if (!config.ok()) {
      std::fprintf(stderr, "eval: %s\n", std::string(config.status().message()).c_str());
      return 2;
    }
    options.sequence_len = config->sequence_len;
    options.train_on_inputs = config->train_on_inputs;
    const auto& formats = config->test_datasets.empty() ? config->datasets : config->test_datasets;
    if (!data.empty()) {
      specs = {formats[0]};
      specs[0].path = data;
    } else if (!config->test_datasets.empty()) {
      specs = config->test_datasets;
    } else {
      std::fprintf(stderr, "eval: %s has no test_datasets; give --data=FILE.jsonl\n",
                   config_path.c_str());
      return 2;
    }
  } else {
    data::DatasetSpec spec{.path = data, .type = absl::GetFlag(FLAGS_type)};
    if (!absl::GetFlag(FLAGS_format).empty()) {
      spec.type = "custom";
      spec.format = data::PromptFormat{.format = absl::GetFlag(FLAGS_format)};
    }
    specs = {spec};
  }
  data::ByteTokenizer tokenizer;
  data::DatasetStats stats;
  std::vector<data::Example> rows;
  for (const data::DatasetSpec& spec : specs) {
    data::DatasetStats s;
    absl::StatusOr<std::vector<data::Example>> part =
        data::LoadDataset(spec, tokenizer, options, &s);
    if (!part.ok()) {
      std::fprintf(stderr, "eval: %s\n", std::string(part.status().message()).c_str());
      return 2;
    }
    rows.insert(rows.end(), part->begin(), part->end());
    stats.rows += s.rows;
    stats.kept += s.kept;
  }
  const EvalResult r = Evaluate(**model, tokenizer, rows,
                                {.batch_size = absl::GetFlag(FLAGS_batch_size),
                                 .max_new_tokens = absl::GetFlag(FLAGS_max_new_tokens)});
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json j = {{"rows", r.rows},
                        {"skipped_rows", stats.rows - stats.kept},
                        {"tokens", r.tokens},
                        {"loss", r.loss},
                        {"perplexity", r.perplexity},
                        {"prompt_rows", r.prompt_rows},
                        {"exact_matches", r.exact_matches},
                        {"accuracy", r.accuracy}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s: %lld rows (%lld skipped), %lld trainable tokens\n", specs[0].path.c_str(),
              (long long)r.rows, (long long)(stats.rows - stats.kept), (long long)r.tokens);
  std::printf("loss %.4f  perplexity %.3f\n", r.loss, r.perplexity);
  if (r.prompt_rows > 0) {
    std::printf("exact match %lld/%lld = %.1f%% (greedy)\n", (long long)r.exact_matches,
                (long long)r.prompt_rows, 100.0 * r.accuracy);
  }
  return 0;
}

}  // namespace
}  // namespace loom

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Evaluates a model: --model=DIR --data=FILE.jsonl");
  absl::ParseCommandLine(argc, argv);
  return loom::Main();
}
