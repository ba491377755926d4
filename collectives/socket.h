// Small blocking TCP helpers (IPv4) shared by the store, the rendezvous and the launcher.
//
//   LOOM_ASSIGN_OR_RETURN(Socket listener, ListenTcp("127.0.0.1", 0));
//   int port = listener.port;
//   LOOM_ASSIGN_OR_RETURN(Socket s, ConnectTcp("127.0.0.1", port, absl::Seconds(10)));
//   LOOM_RETURN_IF_ERROR(SendAll(s.fd, data.data(), data.size()));
#ifndef LOOM_COLLECTIVES_SOCKET_H_
#define LOOM_COLLECTIVES_SOCKET_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace loom::collectives {

// An owned file descriptor (closed on destruction) and, for listeners, the bound port.
struct Socket {
  int fd = -1;
  int port = 0;

  Socket() = default;
  Socket(int f, int p) : fd(f), port(p) {}
  Socket(Socket&& o) noexcept : fd(o.fd), port(o.port) { o.fd = -1; }
  Socket& operator=(Socket&& o) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

// The IPv4 address of `host` ("localhost", a name, or a dotted quad).
absl::StatusOr<std::string> ResolveIpv4(const std::string& host);
bool IsLoopback(const std::string& ipv4);

// Listens on host:port (port 0: any free port). "Address already in use" names the port.
absl::StatusOr<Socket> ListenTcp(const std::string& host, int port);
// Connects, retrying "connection refused" until `timeout` (the server may start later).
absl::StatusOr<Socket> ConnectTcp(const std::string& host, int port, absl::Duration timeout);

absl::Status SendAll(int fd, const void* data, size_t size);
// Reads exactly `size` bytes; fails on EOF ("connection closed") or error.
absl::Status RecvAll(int fd, void* data, size_t size);

// A port that was free a moment ago on `host` (bind to 0, read, close).
absl::StatusOr<int> PickFreePort(const std::string& host);
// This host's address on the route toward `peer` (no packet is sent): what peers on other
// hosts can reach us at.
absl::StatusOr<std::string> LocalAddressToward(const std::string& peer);
std::string HostName();

}  // namespace loom::collectives

#endif  // LOOM_COLLECTIVES_SOCKET_H_
