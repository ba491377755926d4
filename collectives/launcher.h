// Starts the ranks of a job as local processes, torchrun-style, when no outside launcher did.
//
//   LOOM_ASSIGN_OR_RETURN(LaunchPlan plan, PlanLaunch(world_size, flags));
//   if (plan.launch) {
//     plan.options.argv = SelfArgv(argc, argv);        // re-execute this binary per rank
//     LOOM_ASSIGN_OR_RETURN(LaunchResult r, Launch(plan.options));
//     return r.exit_code;
//   }
//   ... this process is a rank: DistEnvFromEnvironment(), World::Join(), ...
//
// Each rank gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT
// (and LOOM_LAUNCHED=1). Every line a rank prints is forwarded with a "[rank k] " prefix to
// the same stream. When a rank fails (non-zero exit or a signal), the others get a short drain
// period to report their own view of the failure, then SIGTERM, then SIGKILL after the grace
// period, and the launcher returns the failed rank's exit code with
// "rank k failed: <its last error line>". Children die with the launcher (PR_SET_PDEATHSIG),
// and SIGINT/SIGTERM to the launcher stop them too.
//
// Several hosts: run one launcher per host with --nnodes, --node-rank, --master-addr,
// --master-port (the same on every host), or under Slurm with one task per node.
#ifndef LOOM_COLLECTIVES_LAUNCHER_H_
#define LOOM_COLLECTIVES_LAUNCHER_H_

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collectives/rendezvous.h"

namespace loom::collectives {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;            // 0: a free port (one node only)
  std::vector<std::string> argv;  // the program and its arguments, run once per rank
  std::vector<std::pair<std::string, std::string>> env;  // extra variables for every rank
  // After the first failure, how long the others may take to report and exit by themselves
  // (they usually fail fast: their collectives lost a peer) before they get SIGTERM.
  absl::Duration drain = absl::Seconds(3);
  absl::Duration grace = absl::Seconds(5);  // between SIGTERM and SIGKILL
  FILE* out = stdout;                       // ranks' stdout, prefixed
  FILE* err = stderr;                       // ranks' stderr, prefixed, and the launcher's own lines
};

struct LaunchResult {
  int exit_code = 0;     // 0, or the failed rank's code (128 + signal when killed)
  int failed_rank = -1;  // the first rank that failed
  std::string failure;   // "rank 1 failed: ..." (empty on success)
};

absl::StatusOr<LaunchResult> Launch(const LaunchOptions& options);

// The launcher's command-line settings (tools take them as flags).
struct LauncherFlags {
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr;  // required with nnodes > 1
  int master_port = 0;      // required with nnodes > 1
};

struct LaunchPlan {
  bool launch = false;  // true: start ranks with `options`; false: this process is a rank
  LaunchOptions options;
};

// Decides for a job of `world_size` ranks: already started by torchrun/our launcher (RANK and
// WORLD_SIZE set, which must match) or by Slurm with one task per rank; Slurm with one task
// per node (launch the node's share); else launch world_size / nnodes local ranks by `flags`.
absl::StatusOr<LaunchPlan> PlanLaunch(int world_size, const LauncherFlags& flags,
                                      const GetEnvFn& getenv = ::getenv);

// This binary (/proc/self/exe) with the arguments it was started with.
std::vector<std::string> SelfArgv(int argc, char** argv);

// Rewrites --node-rank, --master-addr, --master-port (torchrun's spelling) in place to the
// underscore names that absl flags accept.
void NormalizeLauncherFlags(int argc, char** argv);

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_LAUNCHER_H_
