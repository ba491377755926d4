#include "collectives/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/status.h"

namespace loom::collectives {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::StatusOr<sockaddr_in> Address(const std::string& host, int port) {
  LOOM_ASSIGN_OR_RETURN(std::string ip, ResolveIpv4(host));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  return addr;
}

int BoundPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

}  // namespace

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    if (fd >= 0) close(fd);
    fd = o.fd;
    port = o.port;
    o.fd = -1;
  }
  return *this;
}

Socket::~Socket() {
  if (fd >= 0) close(fd);
}

absl::StatusOr<std::string> ResolveIpv4(const std::string& host) {
  in_addr parsed{};
  if (inet_pton(AF_INET, host.c_str(), &parsed) == 1) return host;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve host '", host, "': ", gai_strerror(rc)));
  }
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(result->ai_addr)->sin_addr, buf, sizeof(buf));
  freeaddrinfo(result);
  return std::string(buf);
}

bool IsLoopback(const std::string& ipv4) { return ipv4.rfind("127.", 0) == 0; }

absl::StatusOr<Socket> ListenTcp(const std::string& host, int port) {
  LOOM_ASSIGN_OR_RETURN(sockaddr_in addr, Address(host, port));
  Socket s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
  if (s.fd < 0) return Errno("socket");
  const int one = 1;
  setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(absl::StrFormat("cannot listen on %s:%d", host, port));
  }
  if (listen(s.fd, 128) != 0) return Errno(absl::StrFormat("listen on %s:%d", host, port));
  s.port = BoundPort(s.fd);
  return s;
}

absl::StatusOr<Socket> ConnectTcp(const std::string& host, int port, absl::Duration timeout) {
  LOOM_ASSIGN_OR_RETURN(sockaddr_in addr, Address(host, port));
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration backoff = absl::Milliseconds(5);
  while (true) {
    Socket s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), 0);
    if (s.fd < 0) return Errno("socket");
    if (connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      const int one = 1;
      setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      return s;
    }
    const int err = errno;
    if ((err != ECONNREFUSED && err != ETIMEDOUT && err != ENETUNREACH && err != EHOSTUNREACH) ||
        absl::Now() + backoff > deadline) {
      return absl::DeadlineExceededError(absl::StrFormat("cannot connect to %s:%d within %s: %s",
                                                         host, port, absl::FormatDuration(timeout),
                                                         std::strerror(err)));
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
    backoff = std::min(backoff * 2, absl::Milliseconds(200));
  }
}

absl::Status SendAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno("send");
    p += n;
    size -= size_t(n);
  }
  return absl::OkStatus();
}

absl::Status RecvAll(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = recv(fd, p, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return absl::UnavailableError("connection closed by the other side");
    if (n < 0) return Errno("recv");
    p += n;
    size -= size_t(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PickFreePort(const std::string& host) {
  LOOM_ASSIGN_OR_RETURN(Socket s, ListenTcp(host, 0));
  return s.port;
}

absl::StatusOr<std::string> LocalAddressToward(const std::string& peer) {
  LOOM_ASSIGN_OR_RETURN(std::string ip, ResolveIpv4(peer));
  if (IsLoopback(ip)) return std::string("127.0.0.1");
  LOOM_ASSIGN_OR_RETURN(sockaddr_in addr, Address(ip, 9));
  Socket s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), 0);
  if (s.fd < 0) return Errno("socket");
  // A UDP connect only picks the route; nothing goes on the wire.
  if (connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(absl::StrCat("no route to ", peer));
  }
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  getsockname(s.fd, reinterpret_cast<sockaddr*>(&local), &len);
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &local.sin_addr, buf, sizeof(buf));
  return std::string(buf);
}

std::string HostName() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

}  // namespace loom::collectives
