// Writes the embedded example's dataset: synthetic instruction rows (alpaca
// fields `instruction` / `output`) of checkable tasks, deterministic in --seed.
// Eval rows never repeat a train instruction.
//
//   bazel run //tools:make_example_data -- --out_dir=$PWD/examples/tiny/data
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "data/synthetic_tasks.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, out_dir, "", "folder for train.jsonl and eval.jsonl");
ABSL_FLAG(int64_t, train_rows, 12000, "training rows (split evenly over the tasks)");
ABSL_FLAG(int64_t, eval_rows, 200, "evaluation rows (split evenly over the tasks)");
ABSL_FLAG(std::string, tasks, "rev,sort,add,up", "comma-separated tasks: rev, sort, add, up");
ABSL_FLAG(uint64_t, seed, 2024, "seed of the rows");

namespace loom::data {
namespace {

int Main() {
  const std::string out = absl::GetFlag(FLAGS_out_dir);
  if (out.empty()) {
    std::fprintf(stderr, "make_example_data: --out_dir is required\n");
    return 2;
  }
  std::vector<SyntheticTask> tasks;
  const std::vector<std::string> names = absl::StrSplit(absl::GetFlag(FLAGS_tasks), ',');
  for (const std::string& name : names) {
    absl::StatusOr<SyntheticTask> t = ParseSyntheticTask(name);
    if (!t.ok()) {
      std::fprintf(stderr, "make_example_data: --tasks: %s\n",
                   std::string(t.status().message()).c_str());
      return 2;
    }
    tasks.push_back(*t);
  }
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  std::set<std::string> seen;
  std::map<std::string, int64_t> counts;
  // Eval rows first, so train rows can skip their instructions; rows
  // interleave the tasks.
  auto write = [&](const std::string& path, int64_t rows, uint64_t index_base) -> bool {
    std::ofstream f(path);
    const bool eval = index_base == 0;
    uint64_t index = index_base;
    for (int64_t written = 0; written < rows; ++index) {
      const SyntheticTask task = tasks[index % tasks.size()];
      const SyntheticRow row = MakeSyntheticRow(task, seed, index / tasks.size());
      if (eval ? !seen.insert(row.instruction).second : seen.count(row.instruction) > 0) continue;
      f << nlohmann::json({{"instruction", row.instruction}, {"output", row.output}}).dump()
        << "\n";
      ++counts[std::string(eval ? "eval " : "train ") + SyntheticTaskName(task)];
      ++written;
    }
    f.close();
    if (!f) std::fprintf(stderr, "make_example_data: cannot write %s\n", path.c_str());
    return bool(f);
  };
  if (!write(out + "/eval.jsonl", absl::GetFlag(FLAGS_eval_rows), 0) ||
      !write(out + "/train.jsonl", absl::GetFlag(FLAGS_train_rows), uint64_t(1) << 32)) {
    return 1;
  }
  for (const auto& [name, n] : counts) std::printf("%s: %lld rows\n", name.c_str(), (long long)n);
  return 0;
}

}  // namespace
}  // namespace loom::data

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return loom::data::Main();
}
