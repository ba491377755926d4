// A TCP key-value store for rendezvous: rank 0 hosts a StoreServer, every rank talks to it
// through a Store client (set/get/add/wait, each with a timeout).
//
//   LOOM_ASSIGN_OR_RETURN(std::unique_ptr<StoreServer> server,
//                         StoreServer::Start({.host = "127.0.0.1", .port = 29500}));   // rank 0
//   LOOM_ASSIGN_OR_RETURN(Store store, Store::Connect("127.0.0.1", 29500, {.rank = r}));
//   LOOM_RETURN_IF_ERROR(store.Set("addr/3", bytes));
//   LOOM_ASSIGN_OR_RETURN(std::string v, store.Get("addr/0", absl::Seconds(30)));
//   Store group = store.WithPrefix("group/dp/");   // same connection, keys under a prefix
//
// Liveness: a client that says which rank it is keeps its connection open for life. When that
// process dies, the kernel closes the socket and the server marks the rank dead (unless it said
// goodbye first), so DeadRanks() tells survivors which peer disappeared. Waits poll the server
// with a short backoff, so a wait never blocks the server and its error can name every key
// still missing.
#ifndef LOOM_COLLECTIVES_STORE_H_
#define LOOM_COLLECTIVES_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace loom::collectives {

struct StoreServerOptions {
  // Address to listen on. Loopback unless the job spans several hosts.
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port (see StoreServer::port())
};

class StoreServer {
 public:
  // Binds and starts serving on a background thread. Fails with a clear error when the port
  // is in use or the address is not one of this host's.
  static absl::StatusOr<std::unique_ptr<StoreServer>> Start(const StoreServerOptions& options);
  ~StoreServer();  // stops the thread and closes every connection

  int port() const { return port_; }
  const std::string& host() const { return host_; }

 private:
  StoreServer() = default;
  struct State;
  std::unique_ptr<State> state_;
  std::string host_;
  int port_ = 0;
};

struct StoreClientOptions {
  int rank = -1;  // >= 0: registers this connection for liveness (DeadRanks)
  // How long Connect keeps retrying while the server is not up yet.
  absl::Duration connect_timeout = absl::Seconds(60);
};

// A client handle. Copies share one connection (thread-safe) and may carry different prefixes.
class Store {
 public:
  static absl::StatusOr<Store> Connect(const std::string& host, int port,
                                       const StoreClientOptions& options = {});

  // Same connection; every key is taken relative to prefix() + `prefix`.
  Store WithPrefix(const std::string& prefix) const;
  const std::string& prefix() const { return prefix_; }

  absl::Status Set(const std::string& key, const std::string& value) const;
  // Waits until `key` exists; the error names the key and the time waited.
  absl::StatusOr<std::string> Get(const std::string& key, absl::Duration timeout) const;
  // The value if present, without waiting.
  absl::StatusOr<std::optional<std::string>> TryGet(const std::string& key) const;
  // Adds `delta` to an integer key (missing = 0) and returns the new value.
  absl::StatusOr<int64_t> Add(const std::string& key, int64_t delta) const;
  // Waits until every key exists; DeadlineExceeded names the keys still missing.
  absl::Status Wait(const std::vector<std::string>& keys, absl::Duration timeout) const;
  // Which of `keys` do not exist yet.
  absl::StatusOr<std::vector<std::string>> Missing(const std::vector<std::string>& keys) const;
  // Ranks whose registered connection closed without Goodbye(), in increasing order.
  absl::StatusOr<std::vector<int>> DeadRanks() const;
  // Marks this rank as finished normally (its disconnect is then not a death).
  absl::Status Goodbye() const;

  const std::string& server_address() const;

 private:
  struct Connection;
  Store(std::shared_ptr<Connection> conn, std::string prefix)
      : conn_(std::move(conn)), prefix_(std::move(prefix)) {}
  std::shared_ptr<Connection> conn_;
  std::string prefix_;
};

// Sets "<tag>/<rank>" = `value` and waits until all `size` ranks did; DeadlineExceeded names
// `what` and the ranks still missing: "rendezvous of 'world': ranks 2, 3 of 4 did not arrive".
absl::Status ArriveAndWait(const Store& store, const std::string& tag, int rank, int size,
                           absl::Duration timeout, const std::string& what,
                           const std::string& value = "");

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_STORE_H_
