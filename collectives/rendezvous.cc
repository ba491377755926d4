#include "collectives/rendezvous.h"

#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "collectives/gloo_communicator.h"
#include "collectives/socket.h"
#include "runtime/status.h"

namespace loom::collectives {
namespace {

absl::StatusOr<int> IntVar(const GetEnvFn& getenv, const char* name, int fallback, int min) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  int out = 0;
  if (!absl::SimpleAtoi(v, &out) || out < min) {
    return absl::InvalidArgumentError(
        absl::StrFormat("environment variable %s=\"%s\" must be an integer >= %d", name, v, min));
  }
  return out;
}

std::string StrVar(const GetEnvFn& getenv, const char* name, const std::string& fallback) {
  const char* v = getenv(name);
  return v == nullptr || *v == '\0' ? fallback : std::string(v);
}

bool Set(const GetEnvFn& getenv, const char* name) {
  const char* v = getenv(name);
  return v != nullptr && *v != '\0';
}

}  // namespace

std::string FirstSlurmHost(const std::string& nodelist) {
  // The first entry: up to a comma that is not inside brackets.
  std::string first;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == ',' && depth == 0) break;
    first += c;
  }
  const size_t open = first.find('[');
  if (open == std::string::npos) return first;
  // "node[01-04,07]" -> prefix "node" + the first number, keeping its zero padding.
  std::string range = first.substr(open + 1);
  const size_t end = range.find_first_of("-,]");
  return first.substr(0, open) + range.substr(0, end);
}

bool StartedByLauncher(const GetEnvFn& getenv) {
  if (Set(getenv, "RANK") && Set(getenv, "WORLD_SIZE")) return true;
  if (Set(getenv, "SLURM_PROCID") && Set(getenv, "SLURM_NTASKS")) {
    const char* n = getenv("SLURM_NTASKS");
    return std::string(n) != "1";
  }
  return false;
}

absl::StatusOr<DistEnv> DistEnvFromEnvironment(const GetEnvFn& getenv) {
  DistEnv e;
  if (Set(getenv, "RANK") || Set(getenv, "WORLD_SIZE")) {
    if (!Set(getenv, "RANK") || !Set(getenv, "WORLD_SIZE")) {
      return absl::InvalidArgumentError(
          "RANK and WORLD_SIZE must be set together (torchrun's environment protocol)");
    }
    e.source = "torchrun";
    LOOM_ASSIGN_OR_RETURN(e.rank, IntVar(getenv, "RANK", 0, 0));
    LOOM_ASSIGN_OR_RETURN(e.world_size, IntVar(getenv, "WORLD_SIZE", 1, 1));
    LOOM_ASSIGN_OR_RETURN(e.local_rank, IntVar(getenv, "LOCAL_RANK", e.rank, 0));
    LOOM_ASSIGN_OR_RETURN(e.local_world_size, IntVar(getenv, "LOCAL_WORLD_SIZE", e.world_size, 1));
    e.master_addr = StrVar(getenv, "MASTER_ADDR", "127.0.0.1");
    LOOM_ASSIGN_OR_RETURN(e.master_port, IntVar(getenv, "MASTER_PORT", 29500, 1));
  } else if (Set(getenv, "SLURM_PROCID") && Set(getenv, "SLURM_NTASKS")) {
    e.source = "slurm";
    LOOM_ASSIGN_OR_RETURN(e.rank, IntVar(getenv, "SLURM_PROCID", 0, 0));
    LOOM_ASSIGN_OR_RETURN(e.world_size, IntVar(getenv, "SLURM_NTASKS", 1, 1));
    LOOM_ASSIGN_OR_RETURN(e.local_rank, IntVar(getenv, "SLURM_LOCALID", 0, 0));
    // SLURM_TASKS_PER_NODE looks like "4(x2),3": this node's count is not always the first,
    // but homogeneous jobs (the common case) have one value.
    std::string per_node =
        StrVar(getenv, "SLURM_NTASKS_PER_NODE", StrVar(getenv, "SLURM_TASKS_PER_NODE", ""));
    per_node = per_node.substr(0, per_node.find_first_of("(,"));
    int local = e.world_size;
    if (!per_node.empty() && !absl::SimpleAtoi(per_node, &local)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot read the tasks per node from SLURM_NTASKS_PER_NODE/SLURM_TASKS_PER_NODE=\"",
          per_node, "\""));
    }
    e.local_world_size = local;
    e.master_addr = StrVar(getenv, "MASTER_ADDR",
                           FirstSlurmHost(StrVar(getenv, "SLURM_JOB_NODELIST", "127.0.0.1")));
    LOOM_ASSIGN_OR_RETURN(int job, IntVar(getenv, "SLURM_JOB_ID", 0, 0));
    LOOM_ASSIGN_OR_RETURN(e.master_port, IntVar(getenv, "MASTER_PORT", 29500 + job % 1000, 1));
  }
  if (e.rank >= e.world_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s environment: rank %d is not below the world size %d", e.source, e.rank, e.world_size));
  }
  if (e.local_rank >= e.local_world_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s environment: local rank %d is not below the local world size %d",
                        e.source, e.local_rank, e.local_world_size));
  }
  if (e.master_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("MASTER_PORT=%d is not a TCP port (1..65535)", e.master_port));
  }
  return e;
}

absl::StatusOr<std::unique_ptr<World>> World::Join(const DistEnv& env,
                                                   const RendezvousOptions& options) {
  std::unique_ptr<World> w(new World());
  w->env_ = env;
  w->options_ = options;
  LOOM_ASSIGN_OR_RETURN(const std::string master_ip, ResolveIpv4(env.master_addr));
  const std::string listen_ip = IsLoopback(master_ip) ? "127.0.0.1" : master_ip;
  if (env.rank == 0) {
    LOOM_ASSIGN_OR_RETURN(w->server_,
                          StoreServer::Start({.host = listen_ip, .port = env.master_port}));
  }
  LOOM_ASSIGN_OR_RETURN(Store root,
                        Store::Connect(master_ip, env.master_port,
                                       {.rank = env.rank, .connect_timeout = options.timeout}));
  w->store_ = root;
  const Store rdzv = root.WithPrefix("rdzv/");
  if (env.rank == 0) LOOM_RETURN_IF_ERROR(rdzv.Set("world_size", absl::StrCat(env.world_size)));
  LOOM_ASSIGN_OR_RETURN(std::string world0, rdzv.Get("world_size", options.timeout));
  if (world0 != absl::StrCat(env.world_size)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rendezvous: rank %d was started with WORLD_SIZE=%d but rank 0 with WORLD_SIZE=%s; "
        "start every rank with the same world size",
        env.rank, env.world_size, world0));
  }
  LOOM_ASSIGN_OR_RETURN(int64_t claims, rdzv.Add(absl::StrCat("claimed/", env.rank), 1));
  if (claims > 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rendezvous: rank %d joined twice (two processes were started with RANK=%d)", env.rank,
        env.rank));
  }
  const std::string me = absl::StrCat(env.local_rank, " ", getpid(), " ", HostName());
  LOOM_RETURN_IF_ERROR(ArriveAndWait(rdzv, "rank", env.rank, env.world_size, options.timeout,
                                     absl::StrCat("rendezvous of ", env.world_size, " ranks"), me));
  for (int r = 0; r < env.world_size; ++r) {
    LOOM_ASSIGN_OR_RETURN(std::string v, rdzv.Get(absl::StrCat("rank/", r), options.timeout));
    std::vector<std::string> parts = absl::StrSplit(v, absl::MaxSplits(' ', 2));
    RankInfo info{.rank = r};
    if (parts.size() == 3) {
      (void)absl::SimpleAtoi(parts[0], &info.local_rank);
      (void)absl::SimpleAtoi(parts[1], &info.pid);
      info.host = parts[2];
    }
    w->ranks_.push_back(info);
  }
  LOOM_ASSIGN_OR_RETURN(w->bind_address_, LocalAddressToward(master_ip));
  CommOptions comm = options.comm;
  comm.name = "world";
  LOOM_ASSIGN_OR_RETURN(
      w->comm_, GlooCommunicator::Create(root.WithPrefix("gloo/world/"), env.rank, env.world_size,
                                         {.comm = comm, .bind_address = w->bind_address_}));
  w->joined_ = true;
  return w;
}

World::~World() {
  comm_.reset();  // ends with a barrier of the world
  if (!joined_) {
    // A failed join: keep rank 0's store up a moment so the others can still name what is
    // missing instead of seeing the store vanish.
    if (server_) absl::SleepFor(absl::Seconds(1));
    return;
  }
  if (!server_) {
    (void)store_->Goodbye();  // first: leaving is not dying
    (void)store_->Set(absl::StrCat("rdzv/left/", env_.rank), "");
  } else {
    // Keep serving until every rank has left (or a short grace), so none sees the store vanish.
    std::vector<std::string> keys;
    for (int r = 0; r < env_.world_size; ++r) keys.push_back(absl::StrCat("rdzv/left/", r));
    (void)store_->Set(absl::StrCat("rdzv/left/0"), "");
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      absl::StatusOr<std::vector<std::string>> missing = store_->Missing(keys);
      absl::StatusOr<std::vector<int>> dead = store_->DeadRanks();
      if (!missing.ok() || !dead.ok()) break;
      // Dead ranks never leave; everyone else has.
      if (missing->size() <= dead->size()) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  store_.reset();
  server_.reset();
}

absl::StatusOr<std::string> ShareFromRoot(const Store& store, const std::string& key, bool is_root,
                                          const std::function<absl::StatusOr<std::string>()>& make,
                                          absl::Duration timeout) {
  if (is_root) {
    LOOM_ASSIGN_OR_RETURN(std::string v, make());
    LOOM_RETURN_IF_ERROR(store.Set(key, v));
    return v;
  }
  return store.Get(key, timeout);
}

}  // namespace loom::collectives
