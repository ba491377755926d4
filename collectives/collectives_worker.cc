// A rank program for the process tests (launcher_test): started by the launcher, joins the
// world from the environment and runs one scenario.
//
//   collectives_worker --mode=cases                       every collective, every dtype
//   collectives_worker --mode=kill --victim=1             rank 1 SIGKILLs itself mid all-gather
//   collectives_worker --mode=fail --victim=2             rank 2 exits 3 with an error line
//   collectives_worker --mode=mismatch --victim=1         rank 1 all-gathers, the others
//                                                         all-reduce
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "collectives/collective_cases.h"
#include "collectives/device_mesh.h"
#include "collectives/rendezvous.h"

ABSL_FLAG(std::string, mode, "cases", "cases | kill | fail | mismatch");
ABSL_FLAG(int, victim, 1, "the rank that dies (kill, fail)");
ABSL_FLAG(int, kill_after_ms, 300, "kill: how long after the all-gathers start");

namespace loom::collectives {
namespace {

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "worker error: %s\n", std::string(st.message()).c_str());
  return 1;
}

int Main() {
  absl::StatusOr<DistEnv> env = DistEnvFromEnvironment();
  if (!env.ok()) return Fail(env.status());
  RendezvousOptions options;
  options.timeout = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<World>> world = World::Join(*env, options);
  if (!world.ok()) return Fail(world.status());
  Communicator& comm = (*world)->comm();
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const int victim = absl::GetFlag(FLAGS_victim);

  if (mode == "cases") {
    if (absl::Status st = RunCollectiveCases(comm); !st.ok()) return Fail(st);
    if (comm.size() == 8) {
      absl::StatusOr<std::unique_ptr<DeviceMesh>> mesh = DeviceMesh::Create(comm, {2, 2, 2, 1});
      if (!mesh.ok()) return Fail(mesh.status());
      for (std::vector<MeshDim> dims : {std::vector<MeshDim>{MeshDim::kCp},
                                        {MeshDim::kDpShard, MeshDim::kCp},
                                        {MeshDim::kDpReplicate, MeshDim::kDpShard}}) {
        absl::StatusOr<Communicator*> g = (*mesh)->Group(dims);
        if (!g.ok()) return Fail(g.status());
        if (absl::Status st = RunCollectiveCases(**g, {DType::kF32, DType::kBF16}); !st.ok()) {
          return Fail(st);
        }
      }
    }
    std::printf("rank %d ok\n", comm.rank());
    return 0;
  }
  if (mode == "kill") {
    if (comm.rank() == victim) {
      std::thread([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(absl::GetFlag(FLAGS_kill_after_ms)));
        raise(SIGKILL);
      }).detach();
    }
    Tensor in = Tensor::Full({1 << 20}, comm.rank(), DType::kF32);
    Tensor out = Tensor::Zeros({comm.size() << 20}, DType::kF32);
    for (int i = 0;; ++i) {
      if (absl::Status st = comm.AllGather(in, out)->Wait(); !st.ok()) return Fail(st);
    }
  }
  if (mode == "fail") {
    if (comm.rank() == victim) {
      std::fprintf(stderr, "boom: intentional failure\n");
      return 3;
    }
    absl::Status st = comm.Barrier()->Wait();
    return Fail(st.ok() ? absl::InternalError("barrier passed without the victim") : st);
  }
  if (mode == "mismatch") {
    Tensor x = Tensor::Zeros({16}, DType::kF32);
    Tensor out = Tensor::Zeros({16 * comm.size()}, DType::kF32);
    absl::Status st = comm.rank() == victim ? comm.AllGather(x, out)->Wait()
                                            : comm.AllReduce(x, ReduceOp::kSum)->Wait();
    return Fail(st.ok() ? absl::InternalError("the mismatch went unnoticed") : st);
  }
  return Fail(absl::InvalidArgumentError("unknown --mode " + mode));
}

}  // namespace
}  // namespace loom::collectives

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return loom::collectives::Main();
}
