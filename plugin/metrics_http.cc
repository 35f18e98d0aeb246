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
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace imgsel::plugin {
namespace {

constexpr size_t kMaxRequest = 8 << 10;
// The whole of one connection, reading and writing.
constexpr absl::Duration kConnectionBudget = absl::Seconds(2);
// How long accepting pauses when the process is out of descriptors: the
// connection stays queued, and poll() would report it again at once.
constexpr absl::Duration kAcceptPause = absl::Milliseconds(50);

std::string HttpAnswer(absl::string_view status, absl::string_view type, absl::string_view body) {
  return absl::StrCat("HTTP/1.0 ", status, "\r\nContent-Type: ", type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
}

// Milliseconds from `now` until `deadline`, for poll: 0 once it has
// passed, -1 (no timeout) for the infinite future.
int MillisUntil(absl::Time deadline, absl::Time now) {
  if (deadline == absl::InfiniteFuture()) return -1;
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(deadline - now, absl::Milliseconds(1)));
  return ms <= 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 60000));
}

bool RequestComplete(const std::string& request) {
  return request.size() >= kMaxRequest || request.find("\r\n\r\n") != std::string::npos ||
         request.find("\n\n") != std::string::npos;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& address, bool allow_remote, std::function<std::string()> render) {
  auto addr = ParseMetricsAddress(address, allow_remote);
  if (!addr.ok()) return addr.status();
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer());
  s->render_ = std::move(render);
  const bool v6 = addr->ipv6;
  s->fd_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s->fd_ < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  int one = 1;
  setsockopt(s->fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss{};
  socklen_t len;
  // ParseMetricsAddress accepted the host as a numeric address already.
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    inet_pton(AF_INET6, addr->host.c_str(), &a->sin6_addr);
    a->sin6_port = htons(static_cast<uint16_t>(addr->port));
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    inet_pton(AF_INET, addr->host.c_str(), &a->sin_addr);
    a->sin_port = htons(static_cast<uint16_t>(addr->port));
    len = sizeof(*a);
  }
  if (bind(s->fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(s->fd_, SOMAXCONN) != 0) {
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

// One open connection: reading its request until complete, then writing
// the answer, all before `deadline`.
struct MetricsHttpServer::Connection {
  int fd = -1;
  absl::Time deadline;
  std::string request;
  std::string answer;  // empty while reading
  size_t sent = 0;
};

void MetricsHttpServer::Run() {
  std::vector<Connection> open;
  absl::Time accept_again = absl::InfinitePast();
  std::vector<pollfd> fds;
  while (!stopped_.load()) {
    const absl::Time now = absl::Now();
    absl::Time wake_at = absl::InfiniteFuture();
    fds.clear();
    fds.push_back({wake_[0], POLLIN, 0});
    const bool accepting = now >= accept_again;
    fds.push_back({fd_, static_cast<short>(accepting ? POLLIN : 0), 0});
    if (!accepting) wake_at = accept_again;
    for (const Connection& c : open) {
      fds.push_back({c.fd, static_cast<short>(c.answer.empty() ? POLLIN : POLLOUT), 0});
      wake_at = std::min(wake_at, c.deadline);
    }
    if (poll(fds.data(), fds.size(), MillisUntil(wake_at, now)) < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) break;

    const absl::Time after = absl::Now();
    for (size_t i = 0; i < open.size(); ++i) {
      Connection& c = open[i];
      const short revents = fds[i + 2].revents;
      bool done = after >= c.deadline;
      if (!done && revents != 0 && c.answer.empty()) {
        char buf[1024];
        const ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
        if (n > 0) c.request.append(buf, static_cast<size_t>(n));
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
          done = true;
        } else if (n == 0 || RequestComplete(c.request)) {
          // A client that half-closed after a partial request is answered
          // for what it sent.
          c.answer = Answer(c.request);
        }
      }
      if (!done && !c.answer.empty()) {
        const ssize_t n =
            send(c.fd, c.answer.data() + c.sent, c.answer.size() - c.sent, MSG_NOSIGNAL);
        if (n > 0) c.sent += static_cast<size_t>(n);
        if ((n < 0 && errno != EAGAIN && errno != EINTR) || c.sent == c.answer.size()) done = true;
      }
      if (done) {
        close(c.fd);
        c.fd = -1;
      }
    }
    open.erase(
        std::remove_if(open.begin(), open.end(), [](const Connection& c) { return c.fd < 0; }),
        open.end());
    if (accepting && (fds[1].revents & POLLIN) != 0) {
      if (!AcceptAll(open)) accept_again = after + kAcceptPause;
    }
  }
  for (const Connection& c : open) close(c.fd);
}

bool MetricsHttpServer::AcceptAll(std::vector<Connection>& open) {
  while (true) {
    const int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) {
      return !(errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM);
    }
    if (open.size() >= static_cast<size_t>(kMaxConnections)) {
      // Best effort, never waited for: the socket's buffer takes it whole.
      // What the client sent so far is read first, so that the close is a
      // FIN after the answer rather than a reset that could discard it.
      const std::string refusal =
          HttpAnswer("503 Service Unavailable", "text/plain", "too many connections\n");
      (void)!send(conn, refusal.data(), refusal.size(), MSG_NOSIGNAL);
      char ignored[1024];
      (void)!recv(conn, ignored, sizeof(ignored), 0);
      close(conn);
      continue;
    }
    open.push_back(Connection{conn, absl::Now() + kConnectionBudget, {}, {}, 0});
  }
}

std::string MetricsHttpServer::Answer(const std::string& request) {
  if (absl::StartsWith(request, "GET /metrics ") || absl::StartsWith(request, "GET /metrics?")) {
    return HttpAnswer("200 OK", "text/plain; version=0.0.4; charset=utf-8", render_());
  }
  if (absl::StartsWith(request, "GET ")) {
    return HttpAnswer("404 Not Found", "text/plain", "see /metrics\n");
  }
  return HttpAnswer("405 Method Not Allowed", "text/plain", "GET only\n");
}

}  // namespace imgsel::plugin
