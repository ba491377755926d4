// Collective bandwidth in the style of nccl-tests, through the same launcher as training.
//
//   bazel run -c opt //tools:comm_bench -- --nproc=4            # Gloo, 4 local ranks
//   bazel run //tools:comm_bench -- --nproc=2 --ops=all_reduce --max_bytes=64M
//
// For each collective and size (1 KiB .. 256 MiB, doubling): time per op (slowest rank), the
// algorithm bandwidth algbw = bytes / time and the bus bandwidth busbw = algbw * factor with
// nccl-tests' factors: all_reduce 2(n-1)/n, all_gather and reduce_scatter (n-1)/n, broadcast
// 1. `bytes` is the whole buffer as in nccl-tests (the gathered output, the scattered input).
// The last column times the same op with the cross-rank descriptor check off (up to
// --check_cost_max_bytes), which is that check's cost. NCCL runs where a GPU is present.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "collectives/gloo_communicator.h"
#include "collectives/launcher.h"
#include "collectives/nccl_communicator.h"
#include "collectives/rendezvous.h"
#include "runtime/cuda/device.h"

ABSL_FLAG(int, nproc, 2, "local ranks to start (when no launcher started this process)");
ABSL_FLAG(std::string, ops, "all_reduce,all_gather,reduce_scatter,broadcast", "collectives");
ABSL_FLAG(std::string, min_bytes, "1K", "smallest buffer (K, M, G suffixes)");
ABSL_FLAG(std::string, max_bytes, "256M", "largest buffer");
ABSL_FLAG(std::string, dtype, "f32", "element type: f32, bf16, f16, i32, i64");
ABSL_FLAG(std::string, check_cost_max_bytes, "1M", "time the unchecked op up to this size");
ABSL_FLAG(int, warmup, 1, "untimed iterations per size");

namespace loom::collectives {
namespace {

int64_t ParseBytes(const std::string& s) {
  int64_t mult = 1;
  std::string digits = s;
  if (!s.empty() && (s.back() == 'K' || s.back() == 'M' || s.back() == 'G')) {
    mult = s.back() == 'K' ? 1 << 10 : s.back() == 'M' ? 1 << 20 : int64_t(1) << 30;
    digits = s.substr(0, s.size() - 1);
  }
  int64_t v = 0;
  return absl::SimpleAtoi(digits, &v) ? v * mult : -1;
}

double BusFactor(const std::string& op, int n) {
  if (op == "all_reduce") return 2.0 * (n - 1) / n;
  if (op == "all_gather" || op == "reduce_scatter") return double(n - 1) / n;
  return 1.0;
}

// Seconds per op, the slowest rank's, over `iters` back-to-back ops after `warmup` ones.
absl::StatusOr<double> Time(Communicator& comm, Communicator& cpu, const std::string& op,
                            const Tensor& big, const Tensor& small, int iters, int warmup) {
  auto once = [&]() -> absl::Status {
    if (op == "all_reduce") return comm.AllReduce(big, ReduceOp::kSum)->Wait();
    if (op == "all_gather") return comm.AllGather(small, big)->Wait();
    if (op == "reduce_scatter") return comm.ReduceScatter(big, small, ReduceOp::kSum)->Wait();
    if (op == "broadcast") return comm.Broadcast(big, 0)->Wait();
    return absl::InvalidArgumentError("unknown op " + op);
  };
  for (int i = 0; i < warmup; ++i) LOOM_RETURN_IF_ERROR(once());
  LOOM_RETURN_IF_ERROR(comm.Barrier()->Wait());
  const absl::Time start = absl::Now();
  for (int i = 0; i < iters; ++i) LOOM_RETURN_IF_ERROR(once());
  LOOM_RETURN_IF_ERROR(comm.Barrier()->Wait());  // NCCL: the host waits for the stream
  Tensor t = Tensor::FromVector<double>({absl::ToDoubleSeconds(absl::Now() - start) / iters}, {1});
  LOOM_RETURN_IF_ERROR(cpu.AllReduce(t, ReduceOp::kMax)->Wait());
  return t.data<double>()[0];
}

absl::Status Bench(Communicator& comm, Communicator* unchecked, Communicator& cpu, Device device,
                   bool print) {
  const int n = comm.size();
  absl::StatusOr<DType> dtype = DTypeFromName(absl::GetFlag(FLAGS_dtype));
  LOOM_RETURN_IF_ERROR(dtype.status());
  const int64_t es = int64_t(SizeOf(*dtype));
  const int64_t lo = ParseBytes(absl::GetFlag(FLAGS_min_bytes));
  const int64_t hi = ParseBytes(absl::GetFlag(FLAGS_max_bytes));
  const int64_t check_hi = ParseBytes(absl::GetFlag(FLAGS_check_cost_max_bytes));
  if (lo <= 0 || hi < lo) return absl::InvalidArgumentError("bad --min_bytes/--max_bytes");
  if (print) {
    std::printf("# %s, %d ranks, dtype %s; time = slowest rank, us per op\n", comm.backend(), n,
                std::string(DTypeName(*dtype)).c_str());
    std::printf(
        "# busbw factors: all_reduce 2(n-1)/n, all_gather and reduce_scatter (n-1)/n, "
        "broadcast 1\n");
  }
  const std::vector<std::string> ops = absl::StrSplit(absl::GetFlag(FLAGS_ops), ',');
  for (const std::string& op : ops) {
    if (print) {
      std::printf("\n# %s\n# %12s %12s %6s %12s %10s %10s %14s\n", op.c_str(), "size", "count",
                  "type", "time_us", "algbw_GB/s", "busbw_GB/s", "unchecked_us");
    }
    for (int64_t bytes = lo; bytes <= hi; bytes *= 2) {
      const int64_t count = std::max<int64_t>(n, bytes / es / n * n);  // divisible by n
      Tensor big = *Tensor::Zeros({count}, *dtype).CopyTo(device);
      Tensor small = *Tensor::Zeros({count / n}, *dtype).CopyTo(device);
      const int iters = int(std::clamp<int64_t>((int64_t(256) << 20) / bytes, 3, 200));
      LOOM_ASSIGN_OR_RETURN(double seconds,
                            Time(comm, cpu, op, big, small, iters, absl::GetFlag(FLAGS_warmup)));
      double unchecked_seconds = -1;
      if (unchecked != nullptr && bytes <= check_hi) {
        LOOM_ASSIGN_OR_RETURN(unchecked_seconds, Time(*unchecked, cpu, op, big, small, iters,
                                                      absl::GetFlag(FLAGS_warmup)));
      }
      const double real_bytes = double(count * es);
      const double algbw = real_bytes / seconds / 1e9;
      if (print) {
        std::printf(
            "  %12.0f %12lld %6s %12.1f %10.3f %10.3f %14s\n", real_bytes, (long long)count,
            std::string(DTypeName(*dtype)).c_str(), seconds * 1e6, algbw, algbw * BusFactor(op, n),
            unchecked_seconds < 0 ? "-" : absl::StrFormat("%.1f", unchecked_seconds * 1e6).c_str());
        std::fflush(stdout);
      }
    }
  }
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  absl::StatusOr<LaunchPlan> plan = PlanLaunch(absl::GetFlag(FLAGS_nproc), {});
  if (!plan.ok()) {
    std::fprintf(stderr, "comm_bench: %s\n", std::string(plan.status().message()).c_str());
    return 2;
  }
  if (plan->launch) {
    plan->options.argv = SelfArgv(argc, argv);
    absl::StatusOr<LaunchResult> r = Launch(plan->options);
    return r.ok() ? r->exit_code : 1;
  }
  auto fail = [](const absl::Status& st) {
    std::fprintf(stderr, "comm_bench: %s\n", std::string(st.message()).c_str());
    return 1;
  };
  absl::StatusOr<DistEnv> env = DistEnvFromEnvironment();
  if (!env.ok()) return fail(env.status());
  absl::StatusOr<std::unique_ptr<World>> world = World::Join(*env, {});
  if (!world.ok()) return fail(world.status());
  const bool print = env->rank == 0;
  CommOptions unchecked_options = (*world)->options().comm;
  unchecked_options.check_collectives = false;
  unchecked_options.name = "unchecked";
  absl::StatusOr<std::unique_ptr<GlooCommunicator>> unchecked = GlooCommunicator::Create(
      (*world)->store().WithPrefix("gloo/unchecked/"), env->rank, env->world_size,
      {.comm = unchecked_options, .bind_address = (*world)->bind_address()});
  if (!unchecked.ok()) return fail(unchecked.status());
  if (absl::Status st =
          Bench((*world)->comm(), unchecked->get(), (*world)->comm(), Device::CPU(), print);
      !st.ok()) {
    return fail(st);
  }
  if (cuda::IsAvailable()) {
    absl::StatusOr<std::unique_ptr<NcclCommunicator>> nccl =
        NcclCommunicator::Create((*world)->comm(), (*world)->store().WithPrefix("nccl/world/"),
                                 env->local_rank, (*world)->options().comm);
    if (!nccl.ok()) return fail(nccl.status());
    if (absl::Status st =
            Bench(**nccl, nullptr, (*world)->comm(), Device::CUDA(env->local_rank), print);
        !st.ok()) {
      return fail(st);
    }
  } else if (print) {
    std::printf("\n# nccl: skipped (%s)\n",
                std::string(cuda::UnavailableReason().message()).c_str());
  }
  return 0;
}

}  // namespace
}  // namespace loom::collectives

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return loom::collectives::Main(argc, argv);
}
