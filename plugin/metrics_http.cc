#include "plugin/metrics_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace imgsel::plugin {
namespace {

constexpr size_t kMaxRequest = 8 << 10;
// The whole of one connection, reading and writing: connections are served
// one at a time, so a client that sends or reads slowly holds the next
// scrape back by this much at most.
constexpr absl::Duration kConnectionBudget = absl::Seconds(2);

// Milliseconds left until `deadline`, for poll; 0 once it has passed.
int MillisLeft(absl::Time deadline) {
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms <= 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 60000));
}

bool WriteAll(int fd, absl::string_view data, absl::Time deadline) {
  while (!data.empty()) {
    pollfd p{fd, POLLOUT, 0};
    const int left = MillisLeft(deadline);
    if (left == 0 || poll(&p, 1, left) <= 0) return false;
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, std::function<std::string()> render) {
  auto addr = ParseLoopbackAddress(address);
  if (!addr.ok()) return addr.status();
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer());
  s->render_ = std::move(render);
  const bool v6 = addr->host == "::1";
  s->fd_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->fd_ < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  int one = 1;
  setsockopt(s->fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons(static_cast<uint16_t>(addr->port));
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons(static_cast<uint16_t>(addr->port));
    len = sizeof(*a);
  }
  if (bind(s->fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(s->fd_, 16) != 0) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", address, ": ", strerror(errno)));
  }
  getsockname(s->fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  s->port_ = v6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (pipe2(s->wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  s->thread_ = std::thread([raw = s.get()] { raw->Run(); });
  return s;
}

MetricsHttpServer::~MetricsHttpServer() {
  Stop();
  for (int fd : {fd_, wake_[0], wake_[1]}) {
    if (fd >= 0) close(fd);
  }
}

void MetricsHttpServer::Stop() {
  if (stopped_.exchange(true)) return;
  if (wake_[1] >= 0) {
    char c = 1;
    (void)!write(wake_[1], &c, 1);
  }
  if (thread_.joinable()) thread_.join();
}

void MetricsHttpServer::Run() {
  while (!stopped_.load()) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) <= 0) continue;
    if (fds[1].revents != 0) break;
    int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) continue;
    Serve(conn);
    close(conn);
  }
}

void MetricsHttpServer::Serve(int conn) {
  const absl::Time deadline = absl::Now() + kConnectionBudget;
  std::string req;
  char buf[1024];
  while (req.size() < kMaxRequest && req.find("\r\n\r\n") == std::string::npos &&
         req.find("\n\n") == std::string::npos) {
    pollfd p{conn, POLLIN, 0};
    const int left = MillisLeft(deadline);
    if (left == 0 || poll(&p, 1, left) <= 0) return;
    ssize_t n = recv(conn, buf, sizeof(buf), 0);
    if (n <= 0) break;
    req.append(buf, static_cast<size_t>(n));
  }
  std::string body;
  std::string status = "200 OK";
  std::string type = "text/plain; version=0.0.4; charset=utf-8";
  if (absl::StartsWith(req, "GET /metrics ") || absl::StartsWith(req, "GET /metrics?")) {
    body = render_();
  } else if (absl::StartsWith(req, "GET ")) {
    status = "404 Not Found";
    type = "text/plain";
    body = "see /metrics\n";
  } else {
    status = "405 Method Not Allowed";
    type = "text/plain";
    body = "GET only\n";
  }
  WriteAll(conn, absl::StrCat("HTTP/1.0 ", status, "\r\nContent-Type: ", type,
                              "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n",
                              body),
           deadline);
}

}  // namespace imgsel::plugin
