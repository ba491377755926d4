#include "collectives/store.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "collectives/socket.h"
#include "runtime/status.h"

namespace loom::collectives {
namespace {

// Wire format: a frame is a count of fields followed by each field as (u32 length, bytes).
// Requests start with the command name; replies with "ok" or "err".
using Fields = std::vector<std::string>;
constexpr uint32_t kMaxFields = 1 << 20;
constexpr uint32_t kMaxFieldBytes = 256u << 20;

absl::Status WriteFrame(int fd, const Fields& fields) {
  std::string out;
  const uint32_t n = uint32_t(fields.size());
  out.append(reinterpret_cast<const char*>(&n), 4);
  for (const std::string& f : fields) {
    const uint32_t len = uint32_t(f.size());
    out.append(reinterpret_cast<const char*>(&len), 4);
    out.append(f);
  }
  return SendAll(fd, out.data(), out.size());
}

absl::StatusOr<Fields> ReadFrame(int fd) {
  uint32_t n = 0;
  LOOM_RETURN_IF_ERROR(RecvAll(fd, &n, 4));
  if (n > kMaxFields) return absl::DataLossError("store: malformed frame (field count)");
  Fields fields(n);
  for (std::string& f : fields) {
    uint32_t len = 0;
    LOOM_RETURN_IF_ERROR(RecvAll(fd, &len, 4));
    if (len > kMaxFieldBytes) return absl::DataLossError("store: malformed frame (field size)");
    f.resize(len);
    if (len > 0) LOOM_RETURN_IF_ERROR(RecvAll(fd, f.data(), len));
  }
  return fields;
}

void SetTimeouts(int fd, absl::Duration d) {
  timeval tv{};
  tv.tv_sec = absl::ToInt64Seconds(d);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

}  // namespace

// ---------------------------------------------------------------- server

struct StoreServer::State {
  Socket listener;
  int wake[2] = {-1, -1};
  std::thread thread;
  std::map<std::string, std::string> data;
  struct Client {
    Socket sock;
    int rank = -1;
    bool said_goodbye = false;
  };
  std::vector<Client> clients;
  std::set<int> dead;

  Fields Handle(Client& c, const Fields& req);
  void Serve();
};

Fields StoreServer::State::Handle(Client& c, const Fields& req) {
  if (req.empty()) return {"err", "empty request"};
  const std::string& cmd = req[0];
  if (cmd == "set" && req.size() == 3) {
    data[req[1]] = req[2];
    return {"ok"};
  }
  if (cmd == "get" && req.size() == 2) {
    auto it = data.find(req[1]);
    if (it == data.end()) return {"ok", "0"};
    return {"ok", "1", it->second};
  }
  if (cmd == "add" && req.size() == 3) {
    int64_t delta = 0, current = 0;
    if (!absl::SimpleAtoi(req[2], &delta)) return {"err", "add: delta is not an integer"};
    auto it = data.find(req[1]);
    if (it != data.end() && !absl::SimpleAtoi(it->second, &current)) {
      return {"err", absl::StrCat("add: key '", req[1], "' does not hold an integer")};
    }
    data[req[1]] = absl::StrCat(current + delta);
    return {"ok", absl::StrCat(current + delta)};
  }
  if (cmd == "missing") {
    Fields out = {"ok"};
    for (size_t i = 1; i < req.size(); ++i) {
      if (!data.contains(req[i])) out.push_back(req[i]);
    }
    return out;
  }
  if (cmd == "hello" && req.size() == 2) {
    if (!absl::SimpleAtoi(req[1], &c.rank)) return {"err", "hello: rank is not an integer"};
    dead.erase(c.rank);
    return {"ok"};
  }
  if (cmd == "bye") {
    c.said_goodbye = true;
    return {"ok"};
  }
  if (cmd == "dead") {
    Fields out = {"ok"};
    for (int r : dead) out.push_back(absl::StrCat(r));
    return out;
  }
  return {"err",
          absl::StrCat("unknown store command '", cmd, "' with ", req.size() - 1, " arguments")};
}

void StoreServer::State::Serve() {
  while (true) {
    std::vector<pollfd> fds;
    fds.push_back({wake[0], POLLIN, 0});
    fds.push_back({listener.fd, POLLIN, 0});
    for (const Client& c : clients) fds.push_back({c.sock.fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) return;  // shutdown
    std::vector<bool> closed(clients.size(), false);
    for (size_t i = 0; i < clients.size(); ++i) {
      if (fds[i + 2].revents == 0) continue;
      Client& c = clients[i];
      absl::StatusOr<Fields> req = ReadFrame(c.sock.fd);
      if (!req.ok() || !WriteFrame(c.sock.fd, Handle(c, *req)).ok()) closed[i] = true;
    }
    for (size_t i = clients.size(); i-- > 0;) {
      if (!closed[i]) continue;
      if (clients[i].rank >= 0 && !clients[i].said_goodbye) dead.insert(clients[i].rank);
      clients.erase(clients.begin() + long(i));
    }
    if (fds[1].revents & POLLIN) {
      const int fd = accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        SetTimeouts(fd, absl::Seconds(10));  // a stalled client cannot stall the server for long
        clients.push_back(Client{Socket(fd, 0)});
      }
    }
  }
}

absl::StatusOr<std::unique_ptr<StoreServer>> StoreServer::Start(const StoreServerOptions& options) {
  absl::StatusOr<Socket> listener = ListenTcp(options.host, options.port);
  if (!listener.ok()) {
    return absl::Status(listener.status().code(),
                        absl::StrCat("store server: ", listener.status().message(),
                                     options.port != 0 ? " (is another job using this port? set "
                                                         "MASTER_PORT or --master-port to a free "
                                                         "one)"
                                                       : ""));
  }
  std::unique_ptr<StoreServer> server(new StoreServer());
  server->state_ = std::make_unique<State>();
  server->state_->listener = std::move(*listener);
  server->port_ = server->state_->listener.port;
  server->host_ = options.host;
  if (pipe2(server->state_->wake, O_CLOEXEC) != 0) {
    return absl::InternalError("store server: pipe failed");
  }
  server->state_->thread = std::thread([s = server->state_.get()] { s->Serve(); });
  return server;
}

StoreServer::~StoreServer() {
  if (!state_) return;
  const char x = 1;
  (void)!write(state_->wake[1], &x, 1);
  state_->thread.join();
  close(state_->wake[0]);
  close(state_->wake[1]);
}

// ---------------------------------------------------------------- client

struct Store::Connection {
  std::mutex mu;
  Socket sock;
  std::string address;  // host:port, for errors
  bool broken = false;

  absl::StatusOr<Fields> Call(const Fields& req) {
    std::lock_guard<std::mutex> lock(mu);
    if (broken) return Unreachable("the connection broke earlier");
    absl::Status st = WriteFrame(sock.fd, req);
    absl::StatusOr<Fields> reply = st.ok() ? ReadFrame(sock.fd) : absl::StatusOr<Fields>(st);
    if (!reply.ok()) {
      broken = true;
      return Unreachable(std::string(reply.status().message()));
    }
    if (reply->empty() || (*reply)[0] != "ok") {
      return absl::InternalError(
          absl::StrCat("store ", address, ": ", reply->size() > 1 ? (*reply)[1] : "bad reply"));
    }
    reply->erase(reply->begin());
    return reply;
  }
  absl::Status Unreachable(const std::string& why) const {
    return absl::UnavailableError(absl::StrCat("store at ", address,
                                               " is unreachable (rank 0 hosts it; did rank 0 "
                                               "exit?): ",
                                               why));
  }
};

absl::StatusOr<Store> Store::Connect(const std::string& host, int port,
                                     const StoreClientOptions& options) {
  absl::StatusOr<Socket> sock = ConnectTcp(host, port, options.connect_timeout);
  if (!sock.ok()) {
    return absl::DeadlineExceededError(
        absl::StrCat("store: ", sock.status().message(),
                     " (rank 0 hosts the store at MASTER_ADDR:MASTER_PORT; "
                     "is it running?)"));
  }
  SetTimeouts(sock->fd, absl::Seconds(60));
  auto conn = std::make_shared<Connection>();
  conn->sock = std::move(*sock);
  conn->address = absl::StrCat(host, ":", port);
  if (options.rank >= 0)
    LOOM_RETURN_IF_ERROR(conn->Call({"hello", absl::StrCat(options.rank)}).status());
  return Store(std::move(conn), "");
}

Store Store::WithPrefix(const std::string& prefix) const { return Store(conn_, prefix_ + prefix); }

const std::string& Store::server_address() const { return conn_->address; }

absl::Status Store::Set(const std::string& key, const std::string& value) const {
  return conn_->Call({"set", prefix_ + key, value}).status();
}

absl::StatusOr<std::optional<std::string>> Store::TryGet(const std::string& key) const {
  LOOM_ASSIGN_OR_RETURN(Fields r, conn_->Call({"get", prefix_ + key}));
  if (r.size() == 2 && r[0] == "1") return std::optional<std::string>(std::move(r[1]));
  return std::optional<std::string>();
}

absl::StatusOr<std::string> Store::Get(const std::string& key, absl::Duration timeout) const {
  LOOM_RETURN_IF_ERROR(Wait({key}, timeout));
  LOOM_ASSIGN_OR_RETURN(std::optional<std::string> v, TryGet(key));
  if (!v) return absl::InternalError(absl::StrCat("store: key '", prefix_ + key, "' vanished"));
  return *v;
}

absl::StatusOr<int64_t> Store::Add(const std::string& key, int64_t delta) const {
  LOOM_ASSIGN_OR_RETURN(Fields r, conn_->Call({"add", prefix_ + key, absl::StrCat(delta)}));
  int64_t v = 0;
  if (r.size() != 1 || !absl::SimpleAtoi(r[0], &v)) return absl::InternalError("store: bad add");
  return v;
}

absl::StatusOr<std::vector<std::string>> Store::Missing(
    const std::vector<std::string>& keys) const {
  Fields req = {"missing"};
  for (const std::string& k : keys) req.push_back(prefix_ + k);
  LOOM_ASSIGN_OR_RETURN(Fields r, conn_->Call(req));
  for (std::string& k : r) k = k.substr(prefix_.size());
  return r;
}

absl::Status Store::Wait(const std::vector<std::string>& keys, absl::Duration timeout) const {
  const absl::Time start = absl::Now(), deadline = start + timeout;
  absl::Duration backoff = absl::Microseconds(200);
  std::vector<std::string> pending = keys;
  while (true) {
    LOOM_ASSIGN_OR_RETURN(pending, Missing(pending));
    if (pending.empty()) return absl::OkStatus();
    if (absl::Now() >= deadline) break;
    std::this_thread::sleep_for(
        absl::ToChronoMicroseconds(std::min(backoff, deadline - absl::Now())));
    backoff = std::min(backoff * 2, absl::Milliseconds(20));
  }
  std::vector<std::string> shown(pending.begin(),
                                 pending.begin() + std::min<size_t>(pending.size(), 16));
  for (std::string& k : shown) k = prefix_ + k;
  return absl::DeadlineExceededError(
      absl::StrFormat("store %s: timed out after %s waiting for %d of %d keys: %s%s",
                      conn_->address, absl::FormatDuration(timeout), pending.size(), keys.size(),
                      absl::StrJoin(shown, ", "), pending.size() > shown.size() ? ", ..." : ""));
}

absl::StatusOr<std::vector<int>> Store::DeadRanks() const {
  LOOM_ASSIGN_OR_RETURN(Fields r, conn_->Call({"dead"}));
  std::vector<int> ranks;
  for (const std::string& s : r) {
    int v = 0;
    if (absl::SimpleAtoi(s, &v)) ranks.push_back(v);
  }
  return ranks;
}

absl::Status Store::Goodbye() const { return conn_->Call({"bye"}).status(); }

absl::Status ArriveAndWait(const Store& store, const std::string& tag, int rank, int size,
                           absl::Duration timeout, const std::string& what,
                           const std::string& value) {
  LOOM_RETURN_IF_ERROR(store.Set(absl::StrCat(tag, "/", rank), value));
  std::vector<std::string> keys;
  for (int r = 0; r < size; ++r) keys.push_back(absl::StrCat(tag, "/", r));
  absl::Status st = store.Wait(keys, timeout);
  if (st.code() != absl::StatusCode::kDeadlineExceeded) return st;
  LOOM_ASSIGN_OR_RETURN(std::vector<std::string> missing, store.Missing(keys));
  std::vector<std::string> ranks;
  for (const std::string& k : missing) ranks.push_back(k.substr(tag.size() + 1));
  return absl::DeadlineExceededError(absl::StrFormat(
      "%s: rank%s %s of %d did not arrive within %s (store %s)", what, ranks.size() == 1 ? "" : "s",
      absl::StrJoin(ranks, ", "), size, absl::FormatDuration(timeout), store.server_address()));
}

}  // namespace loom::collectives
