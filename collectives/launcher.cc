#include "collectives/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "collectives/socket.h"
#include "runtime/status.h"

extern char** environ;

namespace loom::collectives {
namespace {

volatile sig_atomic_t g_stop_signal = 0;
void OnStopSignal(int sig) { g_stop_signal = sig; }

struct Child {
  int rank = 0;
  pid_t pid = -1;
  int fds[2] = {-1, -1};  // stdout, stderr read ends
  std::string partial[2];
  std::string last_line[2];
  bool running = true;
  int status = 0;
};

std::vector<std::string> RankEnv(const LaunchOptions& o, int global, int local, int world,
                                 int port) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) vars[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  // Our ranks are not Slurm tasks, whatever the environment says.
  for (auto it = vars.begin(); it != vars.end();) {
    it = it->first.rfind("SLURM_PROCID", 0) == 0 ? vars.erase(it) : std::next(it);
  }
  vars["RANK"] = absl::StrCat(global);
  vars["WORLD_SIZE"] = absl::StrCat(world);
  vars["LOCAL_RANK"] = absl::StrCat(local);
  vars["LOCAL_WORLD_SIZE"] = absl::StrCat(o.nproc_per_node);
  vars["GROUP_RANK"] = absl::StrCat(o.node_rank);
  vars["MASTER_ADDR"] = o.master_addr;
  vars["MASTER_PORT"] = absl::StrCat(port);
  vars["LOOM_LAUNCHED"] = absl::StrCat(1);
  for (const auto& [k, v] : o.env) vars[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : vars) out.push_back(absl::StrCat(k, "=", v));
  return out;
}

std::string DescribeExit(int status) {
  if (WIFSIGNALED(status)) {
    return absl::StrFormat("killed by signal %d (%s)", WTERMSIG(status),
                           strsignal(WTERMSIG(status)));
  }
  return absl::StrFormat("exit code %d", WEXITSTATUS(status));
}

int ExitCodeOf(int status) {
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

void Forward(Child& c, int stream, const char* data, size_t n, FILE* to) {
  std::string& buf = c.partial[stream];
  buf.append(data, n);
  size_t start = 0, nl;
  while ((nl = buf.find('\n', start)) != std::string::npos) {
    const std::string line = buf.substr(start, nl - start);
    std::fprintf(to, "[rank %d] %s\n", c.rank, line.c_str());
    if (!absl::StripAsciiWhitespace(line).empty()) c.last_line[stream] = line;
    start = nl + 1;
  }
  buf.erase(0, start);
  std::fflush(to);
}

void FlushPartial(Child& c, int stream, FILE* to) {
  if (c.partial[stream].empty()) return;
  Forward(c, stream, "\n", 1, to);
}

}  // namespace

absl::StatusOr<LaunchResult> Launch(const LaunchOptions& o) {
  if (o.argv.empty()) return absl::InvalidArgumentError("launcher: no program to run");
  if (o.nproc_per_node < 1 || o.nnodes < 1 || o.node_rank < 0 || o.node_rank >= o.nnodes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("launcher: need nproc_per_node >= 1 and 0 <= node_rank (%d) < nnodes (%d)",
                        o.node_rank, o.nnodes));
  }
  int port = o.master_port;
  if (port == 0) {
    if (o.nnodes > 1) {
      return absl::InvalidArgumentError(
          "launcher: --master-port is required with --nnodes > 1 (every node must use the same)");
    }
    LOOM_ASSIGN_OR_RETURN(port, PickFreePort("127.0.0.1"));
  }
  const int world = o.nproc_per_node * o.nnodes;
  std::fprintf(o.err, "launcher: starting %d local rank%s of %d (node %d of %d, master %s:%d)\n",
               o.nproc_per_node, o.nproc_per_node == 1 ? "" : "s", world, o.node_rank, o.nnodes,
               o.master_addr.c_str(), port);
  std::fflush(o.err);

  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  struct sigaction old_int {
  }, old_term{};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  g_stop_signal = 0;

  std::vector<char*> argv;
  for (const std::string& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t launcher_pid = getpid();

  std::vector<Child> children(size_t(o.nproc_per_node));
  for (int local = 0; local < o.nproc_per_node; ++local) {
    Child& c = children[size_t(local)];
    c.rank = o.node_rank * o.nproc_per_node + local;
    const std::vector<std::string> env = RankEnv(o, c.rank, local, world, port);
    std::vector<char*> envp;
    for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
      return absl::InternalError(absl::StrCat("launcher: pipe: ", std::strerror(errno)));
    }
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError(absl::StrCat("launcher: fork: ", std::strerror(errno)));
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != launcher_pid) _exit(127);  // the launcher died already
      dup2(out_pipe[1], 1);
      dup2(err_pipe[1], 2);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      execve(argv[0], argv.data(), envp.data());
      const std::string msg =
          absl::StrCat("launcher: cannot run ", o.argv[0], ": ", std::strerror(errno), "\n");
      (void)!write(2, msg.data(), msg.size());
      _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    c.pid = pid;
    c.fds[0] = out_pipe[0];
    c.fds[1] = err_pipe[0];
  }

  LaunchResult result;
  absl::Time term_at = absl::InfiniteFuture(), kill_at = absl::InfiniteFuture();
  bool terminating = false;
  auto stop_all = [&](absl::Duration drain) {
    if (terminating) return;
    terminating = true;
    term_at = absl::Now() + drain;
  };
  while (true) {
    std::vector<pollfd> fds;
    std::vector<std::pair<size_t, int>> owner;
    for (size_t i = 0; i < children.size(); ++i) {
      for (int s = 0; s < 2; ++s) {
        if (children[i].fds[s] >= 0) {
          fds.push_back({children[i].fds[s], POLLIN, 0});
          owner.push_back({i, s});
        }
      }
    }
    bool any_running = false;
    for (const Child& c : children) any_running |= c.running;
    if (fds.empty() && !any_running) break;
    if (!fds.empty())
      poll(fds.data(), fds.size(), 50);
    else
      usleep(20000);
    for (size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      Child& c = children[owner[k].first];
      const int s = owner[k].second;
      char buf[65536];
      const ssize_t n = read(c.fds[s], buf, sizeof(buf));
      if (n > 0) {
        Forward(c, s, buf, size_t(n), s == 0 ? o.out : o.err);
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        FlushPartial(c, s, s == 0 ? o.out : o.err);
        close(c.fds[s]);
        c.fds[s] = -1;
      }
    }
    // Reap; among ranks that ended in the same round, a killed one is the likelier cause.
    int newly_failed = -1;
    for (size_t i = 0; i < children.size(); ++i) {
      Child& c = children[i];
      if (!c.running) continue;
      if (waitpid(c.pid, &c.status, WNOHANG) != c.pid) continue;
      c.running = false;
      const bool failed = !(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0);
      if (failed && !terminating &&
          (newly_failed < 0 ||
           (WIFSIGNALED(c.status) && !WIFSIGNALED(children[size_t(newly_failed)].status)))) {
        newly_failed = int(i);
      }
    }
    if (newly_failed >= 0 && result.failed_rank < 0) {
      const Child& c = children[size_t(newly_failed)];
      result.failed_rank = c.rank;
      result.exit_code = ExitCodeOf(c.status);
      result.failure = absl::StrCat("rank ", c.rank, " failed: ", DescribeExit(c.status));
      stop_all(o.drain);
    }
    if (g_stop_signal != 0 && !terminating) {
      std::fprintf(o.err, "launcher: got signal %d, stopping the ranks\n", int(g_stop_signal));
      if (result.exit_code == 0) result.exit_code = 128 + g_stop_signal;
      stop_all(absl::ZeroDuration());
    }
    if (terminating && absl::Now() >= term_at) {
      for (Child& c : children) {
        if (c.running) kill(c.pid, SIGTERM);
      }
      term_at = absl::InfiniteFuture();
      kill_at = absl::Now() + o.grace;
    }
    if (terminating && absl::Now() >= kill_at) {
      for (Child& c : children) {
        if (c.running) kill(c.pid, SIGKILL);
      }
      kill_at = absl::InfiniteFuture();
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (result.failed_rank >= 0) {
    const Child& c = children[size_t(result.failed_rank - o.node_rank * o.nproc_per_node)];
    const std::string& last = !c.last_line[1].empty() ? c.last_line[1] : c.last_line[0];
    if (!last.empty()) absl::StrAppend(&result.failure, ": ", last);
    std::fprintf(o.err, "launcher: %s\n", result.failure.c_str());
    std::fflush(o.err);
  }
  return result;
}

absl::StatusOr<LaunchPlan> PlanLaunch(int world_size, const LauncherFlags& flags,
                                      const GetEnvFn& getenv) {
  LaunchPlan plan;
  auto is_set = [&](const char* n) {
    const char* v = getenv(n);
    return v != nullptr && *v != '\0';
  };
  if (is_set("RANK") && is_set("WORLD_SIZE")) {
    if (std::string(getenv("WORLD_SIZE")) != absl::StrCat(world_size)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "the config's mesh needs %d ranks but this process was started with WORLD_SIZE=%s",
          world_size, getenv("WORLD_SIZE")));
    }
    return plan;
  }
  int slurm_tasks = 0, slurm_nodes = 0, slurm_node = 0;
  if (is_set("SLURM_NTASKS") && absl::SimpleAtoi(getenv("SLURM_NTASKS"), &slurm_tasks) &&
      slurm_tasks > 1) {
    if (slurm_tasks == world_size && is_set("SLURM_PROCID")) return plan;  // a task per rank
    if (is_set("SLURM_NNODES") && absl::SimpleAtoi(getenv("SLURM_NNODES"), &slurm_nodes) &&
        slurm_nodes == slurm_tasks && is_set("SLURM_NODEID") &&
        absl::SimpleAtoi(getenv("SLURM_NODEID"), &slurm_node) && world_size % slurm_nodes == 0) {
      LOOM_ASSIGN_OR_RETURN(DistEnv slurm, DistEnvFromEnvironment(getenv));
      plan.launch = true;
      plan.options.nnodes = slurm_nodes;
      plan.options.node_rank = slurm_node;
      plan.options.nproc_per_node = world_size / slurm_nodes;
      plan.options.master_addr = slurm.master_addr;
      plan.options.master_port = slurm.master_port;
      return plan;
    }
    return absl::InvalidArgumentError(absl::StrFormat(
        "Slurm started %d tasks, but the config's mesh needs %d ranks: start one task per rank "
        "or one task per node",
        slurm_tasks, world_size));
  }
  if (world_size == 1 && flags.nnodes == 1) return plan;
  if (flags.nnodes < 1 || flags.node_rank < 0 || flags.node_rank >= flags.nnodes) {
    return absl::InvalidArgumentError(absl::StrFormat("--node-rank=%d must be in [0, --nnodes=%d)",
                                                      flags.node_rank, flags.nnodes));
  }
  if (world_size % flags.nnodes != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the config's mesh needs %d ranks, which --nnodes=%d does not divide",
                        world_size, flags.nnodes));
  }
  if (flags.nnodes > 1 && (flags.master_addr.empty() || flags.master_port == 0)) {
    return absl::InvalidArgumentError(
        "--nnodes > 1 needs --master-addr and --master-port (node 0's address and a free port, "
        "the same on every node)");
  }
  plan.launch = true;
  plan.options.nnodes = flags.nnodes;
  plan.options.node_rank = flags.node_rank;
  plan.options.nproc_per_node = world_size / flags.nnodes;
  plan.options.master_addr = flags.master_addr.empty() ? "127.0.0.1" : flags.master_addr;
  plan.options.master_port = flags.master_port;
  return plan;
}

std::vector<std::string> SelfArgv(int argc, char** argv) {
  std::vector<std::string> out;
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  out.push_back(n > 0 ? std::string(path, size_t(n)) : std::string(argv[0]));
  for (int i = 1; i < argc; ++i) out.push_back(argv[i]);
  return out;
}

void NormalizeLauncherFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    for (const char* name : {"--node-rank", "--master-addr", "--master-port"}) {
      const size_t len = std::strlen(name);
      if (std::strncmp(argv[i], name, len) == 0 && (argv[i][len] == '=' || argv[i][len] == 0)) {
        for (size_t k = 2; k < len; ++k) {
          if (argv[i][k] == '-') argv[i][k] = '_';
        }
      }
    }
  }
}

}  // namespace loom::collectives
