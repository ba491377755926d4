// Trains a Llama model from one YAML config (Axolotl's key names).
//
//   bazel run //tools:train -- --config=examples/tiny/train.yaml
//   bazel run //tools:train                       # the same embedded example
//
// Several ranks: when the config's mesh (dp_replicate_size x dp_shard_size x
// context_parallel_size x tensor_parallel_size) needs more than one and no launcher started
// this process, it starts that many local ranks itself (collectives/launcher.h); several hosts
// with --nnodes --node-rank --master-addr --master-port on each, or torchrun / srun.
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
#include "collectives/device_mesh.h"
#include "collectives/launcher.h"
#include "collectives/rendezvous.h"
#include "runtime/parallel.h"
#include "train/config.h"
#include "train/data_parallel.h"
#include "train/trainer.h"

ABSL_FLAG(std::string, config, "",
          "training config (YAML); default: the embedded tiny example, examples/tiny/train.yaml");
ABSL_FLAG(int, nnodes, 1, "hosts of a multi-host job (one launcher per host)");
ABSL_FLAG(int, node_rank, 0, "this host's index in [0, nnodes) (also --node-rank)");
ABSL_FLAG(std::string, master_addr, "", "node 0's address, with --nnodes > 1 (--master-addr)");
ABSL_FLAG(int, master_port, 0, "the store's port on node 0; 0: a free one (--master-port)");

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

// This process is one rank of a data-parallel job: join, build the mesh, train as a replica.
int RunRank(const TrainConfig& config) {
  using namespace collectives;
  auto fail = [](const absl::Status& st) {
    std::fprintf(stderr, "train: %s\n", std::string(st.message()).c_str());
    return 1;
  };
  absl::StatusOr<DistEnv> env = DistEnvFromEnvironment();
  if (!env.ok()) return fail(env.status());
  if (config.num_threads == 0) SetNumThreads(std::max(1, NumThreads() / env->local_world_size));
  absl::StatusOr<std::unique_ptr<World>> world = World::Join(*env, RendezvousOptions{});
  if (!world.ok()) return fail(world.status());
  const MeshShape shape{int(config.dp_replicate_size), int(config.dp_shard_size),
                        int(config.context_parallel_size), int(config.tensor_parallel_size)};
  absl::StatusOr<std::unique_ptr<DeviceMesh>> mesh = DeviceMesh::Create((*world)->comm(), shape);
  if (!mesh.ok()) return fail(mesh.status());
  absl::StatusOr<Communicator*> dp_group =
      (*mesh)->Group({MeshDim::kDpReplicate, MeshDim::kDpShard});
  if (!dp_group.ok()) return fail(dp_group.status());
  if (env->rank == 0) {
    std::vector<TopologyRow> rows;
    for (const RankInfo& r : (*world)->ranks()) rows.push_back({r.rank, r.host, r.pid, "cpu"});
    std::fprintf(stderr, "%s", TopologyTable(rows, shape).c_str());
    if (config.dp_shard_size > 1) {
      std::fprintf(stderr,
                   "train: dp_shard_size %lld runs as replicated data parallelism: parameters are "
                   "not sharded yet\n",
                   (long long)config.dp_shard_size);
    }
  }
  DataParallel dp(**dp_group);
  absl::StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(config, &dp);
  if (!trainer.ok()) return fail(trainer.status());
  absl::StatusOr<TrainSummary> s = (*trainer)->Run();
  if (!s.ok()) return fail(s.status());
  if (env->rank == 0) {
    std::printf("trained %lld steps in %.1f s on %d ranks: loss %.4f -> %.4f\n",
                (long long)s->steps, s->seconds, env->world_size, s->first_loss, s->last_loss);
    std::printf("model: %s (metrics: %s/metrics.jsonl)\n", s->output_dir.c_str(),
                s->output_dir.c_str());
  }
  return 0;
}

int Main(int argc, char** argv) {
  const char* argv0 = argv[0];
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
  const collectives::LauncherFlags flags{.nnodes = absl::GetFlag(FLAGS_nnodes),
                                         .node_rank = absl::GetFlag(FLAGS_node_rank),
                                         .master_addr = absl::GetFlag(FLAGS_master_addr),
                                         .master_port = absl::GetFlag(FLAGS_master_port)};
  absl::StatusOr<collectives::LaunchPlan> plan =
      collectives::PlanLaunch(int(config->world_size()), flags);
  if (!plan.ok()) {
    std::fprintf(stderr, "train: %s\n", std::string(plan.status().message()).c_str());
    return 2;
  }
  if (plan->launch) {
    plan->options.argv = collectives::SelfArgv(argc, argv);
    absl::StatusOr<collectives::LaunchResult> r = collectives::Launch(plan->options);
    if (!r.ok()) {
      std::fprintf(stderr, "train: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    return r->exit_code;
  }
  if (config->world_size() > 1 || collectives::StartedByLauncher()) return RunRank(*config);
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
  loom::collectives::NormalizeLauncherFlags(argc, argv);
  absl::ParseCommandLine(argc, argv);
  return loom::Main(argc, argv);
}
