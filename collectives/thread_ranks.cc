#include "collectives/thread_ranks.h"

#include <mutex>
#include <thread>
#include <vector>

#include "collectives/gloo_communicator.h"
#include "runtime/status.h"

namespace loom::collectives {

CommOptions TestCommOptions(absl::Duration timeout) {
  CommOptions o;
  o.timeout = timeout;
  o.exit_on_hang = false;
  o.hang_grace = absl::Seconds(5);
  return o;
}

absl::Status RunOnThreadRanks(int n,
                              const std::function<void(int, Communicator&, const Store&)>& fn,
                              CommOptions options) {
  LOOM_ASSIGN_OR_RETURN(std::unique_ptr<StoreServer> server, StoreServer::Start({}));
  std::mutex mu;
  absl::Status first_error;
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      absl::Status st = [&]() -> absl::Status {
        LOOM_ASSIGN_OR_RETURN(Store store,
                              Store::Connect("127.0.0.1", server->port(), {.rank = r}));
        LOOM_ASSIGN_OR_RETURN(
            std::unique_ptr<GlooCommunicator> comm,
            GlooCommunicator::Create(store.WithPrefix("gloo/world/"), r, n, {.comm = options}));
        fn(r, *comm, store);
        comm.reset();
        return store.Goodbye();
      }();
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = st;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return first_error;
}

absl::Status RunOnThreadRanks(int n, const std::function<void(int, Communicator&)>& fn,
                              CommOptions options) {
  return RunOnThreadRanks(
      n, [&](int r, Communicator& c, const Store&) { fn(r, c); }, options);
}

}  // namespace loom::collectives
