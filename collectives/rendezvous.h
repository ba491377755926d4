// How the ranks of a job find each other: the launcher's environment (torchrun's variables or
// Slurm's), the store hosted by rank 0, and the world's Gloo communicator.
//
//   LOOM_ASSIGN_OR_RETURN(DistEnv env, DistEnvFromEnvironment());     // RANK, WORLD_SIZE, ...
//   LOOM_ASSIGN_OR_RETURN(std::unique_ptr<World> world, World::Join(env, {}));
//   Communicator& comm = world->comm();                                // every rank, CPU
//
// torchrun: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
// Slurm (srun): SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE or
// SLURM_TASKS_PER_NODE; MASTER_ADDR defaults to the first host of SLURM_JOB_NODELIST and
// MASTER_PORT to 29500 + SLURM_JOB_ID % 1000. Without either: one process, world size 1.
//
// Join: rank 0 starts the store on MASTER_ADDR:MASTER_PORT (loopback when MASTER_ADDR is a
// loopback address, else that address, which must be rank 0's own); every rank connects,
// checks that it was started with the same WORLD_SIZE as rank 0 and that no other process
// claimed its RANK, and waits for all ranks. Every wait has the rendezvous timeout, and its
// error names the ranks still missing.
#ifndef LOOM_COLLECTIVES_RENDEZVOUS_H_
#define LOOM_COLLECTIVES_RENDEZVOUS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collectives/communicator.h"
#include "collectives/store.h"

namespace loom::collectives {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "none";  // "torchrun" (or our launcher), "slurm", "none"
};

using GetEnvFn = std::function<const char*(const char*)>;

// Reads the environment; errors name the variable and the bad value.
absl::StatusOr<DistEnv> DistEnvFromEnvironment(const GetEnvFn& getenv = ::getenv);
// True when a launcher (torchrun, Slurm with more than one task, ours) started this process.
bool StartedByLauncher(const GetEnvFn& getenv = ::getenv);
// "node[01-04,07],gpu5" -> "node01" (the first host of a Slurm node list).
std::string FirstSlurmHost(const std::string& nodelist);

struct RendezvousOptions {
  absl::Duration timeout = absl::Seconds(300);
  CommOptions comm = CommOptionsFromEnv();
};

struct RankInfo {
  int rank = 0;
  int local_rank = 0;
  std::string host;
  int pid = 0;
};

// This process's membership of the job: the store (and its server on rank 0) and the world's
// Gloo communicator. Destroying it meets the other ranks first, so no peer sees a closed
// connection mid-collective, and keeps rank 0's store up until every rank has left.
class World {
 public:
  static absl::StatusOr<std::unique_ptr<World>> Join(const DistEnv& env,
                                                     const RendezvousOptions& options);
  ~World();

  const DistEnv& env() const { return env_; }
  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  const Store& store() const { return *store_; }
  Communicator& comm() { return *comm_; }
  // This host's address as the other ranks reach it.
  const std::string& bind_address() const { return bind_address_; }
  const std::vector<RankInfo>& ranks() const { return ranks_; }
  const RendezvousOptions& options() const { return options_; }

 private:
  World() = default;
  DistEnv env_;
  RendezvousOptions options_;
  std::unique_ptr<StoreServer> server_;
  std::optional<Store> store_;
  std::string bind_address_;
  std::vector<RankInfo> ranks_;
  std::unique_ptr<Communicator> comm_;
  bool joined_ = false;
};

// Rank `root` produces a value (e.g. an NCCL unique id) that every rank receives via the store.
absl::StatusOr<std::string> ShareFromRoot(const Store& store, const std::string& key, bool is_root,
                                          const std::function<absl::StatusOr<std::string>()>& make,
                                          absl::Duration timeout);

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_RENDEZVOUS_H_
