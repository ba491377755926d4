// Trains a Llama model from one YAML config (Axolotl's key names).
//
//   bazel run //tools:train -- --config=examples/tiny/train.yaml
//   bazel run //tools:train                       # the same embedded example
//
// Relative paths (the config, datasets, output_dir) are taken from the
// directory `bazel run` was started in. Exit status: 0 on success, 2 for a
// bad config or data (the message names the file, line and key), 1 otherwise.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "train/config.h"
#include "train/trainer.h"

ABSL_FLAG(std::string, config, "",
          "training config (YAML); default: the embedded tiny example, examples/tiny/train.yaml");

namespace loom {
namespace {

// The embedded example, found next to the binary (Bazel runfiles).
std::string EmbeddedConfig(const char* argv0) {
  for (const std::string& root : {std::string(argv0) + ".runfiles/loom", std::string(".")}) {
    const std::string path = root + "/examples/tiny/train.yaml";
    if (std::filesystem::exists(path)) return std::filesystem::absolute(path).string();
  }
  return "examples/tiny/train.yaml";
}

int Main(const char* argv0) {
  std::string config_path = absl::GetFlag(FLAGS_config);
  if (config_path.empty()) config_path = EmbeddedConfig(argv0);
  // `bazel run` starts us in the runfiles tree; users mean their own folder.
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd != nullptr) {
    if (chdir(wd) != 0) std::fprintf(stderr, "train: cannot enter %s\n", wd);
  }
  absl::StatusOr<TrainConfig> config = LoadTrainConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "train: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  std::fprintf(stderr, "train: config %s\n", config->config_path.c_str());
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(*config);
  if (!trainer.ok()) {
    std::fprintf(stderr, "train: %s\n", std::string(trainer.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<TrainSummary> s = (*trainer)->Run();
  if (!s.ok()) {
    std::fprintf(stderr, "train: %s\n", std::string(s.status().message()).c_str());
    return 1;
  }
  std::printf("trained %lld steps in %.1f s (%.0f tokens/s): loss %.4f -> %.4f\n",
              (long long)s->steps, s->seconds, double(s->tokens) / std::max(s->seconds, 1e-9),
              s->first_loss, s->last_loss);
  if (s->initial_eval && s->final_eval) {
    std::printf("eval loss %.4f -> %.4f", s->initial_eval->loss, s->final_eval->loss);
    if (s->final_eval->prompt_rows > 0) {
      std::printf(", exact match %.1f%% -> %.1f%% (%lld rows)", 100 * s->initial_eval->accuracy,
                  100 * s->final_eval->accuracy, (long long)s->final_eval->prompt_rows);
    }
    std::printf("\n");
  }
  std::printf("model: %s (metrics: %s/metrics.jsonl)\n", s->output_dir.c_str(),
              s->output_dir.c_str());
  return 0;
}

}  // namespace
}  // namespace loom

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Trains a Llama model from a YAML config: --config=FILE.yaml");
  absl::ParseCommandLine(argc, argv);
  return loom::Main(argv[0]);
}
