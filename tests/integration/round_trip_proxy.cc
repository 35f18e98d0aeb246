#include "tests/integration/round_trip_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace imgsel::integration {
namespace {

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

std::unique_ptr<RoundTripProxy> RoundTripProxy::Start(int upstream_port, absl::Duration delay,
                                                      std::string* why) {
  std::unique_ptr<RoundTripProxy> p(new RoundTripProxy());
  p->upstream_port_ = upstream_port;
  p->delay_ = delay;
  p->stop_fd_ = eventfd(0, EFD_CLOEXEC);
  p->listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (p->stop_fd_ < 0 || p->listen_fd_ < 0 ||
      bind(p->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(p->listen_fd_, 256) != 0 ||
      getsockname(p->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    *why = "round-trip proxy: cannot listen on 127.0.0.1";
    return nullptr;
  }
  p->port_ = ntohs(addr.sin_port);
  p->acceptor_ = std::thread([raw = p.get()] { raw->Accept(); });
  return p;
}

RoundTripProxy::~RoundTripProxy() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> connections;
  {
    absl::MutexLock lock(&mu_);
    connections.swap(connections_);
  }
  for (std::thread& t : connections) t.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

void RoundTripProxy::Accept() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    absl::MutexLock lock(&mu_);
    connections_.emplace_back([this, client] { Serve(client); });
  }
}

void RoundTripProxy::Serve(int client) {
  int upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(upstream_port_));
  if (upstream < 0 || connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (upstream >= 0) close(upstream);
    close(client);
    return;
  }
  char buf[64 * 1024];
  while (true) {
    pollfd fds[3] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) continue;
    if (fds[2].revents != 0) break;
    if (fds[0].revents != 0) {
      ssize_t n = recv(client, buf, sizeof(buf), 0);
      if (n <= 0) break;
      const absl::Time arrived = absl::Now();
      {
        absl::MutexLock lock(&mu_);
        bool hold = false;
        for (absl::string_view line : absl::StrSplit(absl::string_view(buf, n), "\r\n")) {
          for (absl::string_view method : {"GET /v2", "HEAD /v2", "POST /v2", "PUT /v2"}) {
            if (absl::StartsWith(line, method)) {
              log_.push_back({arrived, std::string(line.substr(0, line.rfind(" HTTP/")))});
              hold = hold || (!hold_.empty() && absl::StrContains(line, hold_));
            }
          }
        }
        if (hold) {
          ++held_;
          auto released = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
            return hold_.empty() || stopping_;
          };
          mu_.AwaitWithTimeout(absl::Condition(&released), absl::Minutes(1));
          --held_;
        }
      }
      // The request crosses the "network": its answer cannot start sooner.
      absl::SleepFor(arrived + delay_ - absl::Now());
      if (!WriteAll(upstream, buf, static_cast<size_t>(n))) break;
    }
    if (fds[1].revents != 0) {
      ssize_t n = recv(upstream, buf, sizeof(buf), 0);
      if (n <= 0) break;
      if (!WriteAll(client, buf, static_cast<size_t>(n))) break;
    }
  }
  close(upstream);
  close(client);
}

std::vector<RoundTripProxy::Request> RoundTripProxy::requests() const {
  absl::MutexLock lock(&mu_);
  return log_;
}

void RoundTripProxy::Hold(const std::string& part) {
  absl::MutexLock lock(&mu_);
  hold_ = part;
}

void RoundTripProxy::Release() {
  absl::MutexLock lock(&mu_);
  hold_.clear();
}

bool RoundTripProxy::AwaitHeld(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto holding = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return held_ > 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&holding), timeout);
}

int RoundTripProxy::Depth(const std::vector<Request>& requests, absl::Duration delay) {
  std::vector<int> depth(requests.size(), 1);
  int deepest = 0;
  for (size_t j = 0; j < requests.size(); ++j) {
    for (size_t i = 0; i < j; ++i) {
      if (requests[i].arrived + delay <= requests[j].arrived) {
        depth[j] = std::max(depth[j], depth[i] + 1);
      }
    }
    deepest = std::max(deepest, depth[j]);
  }
  return deepest;
}

}  // namespace imgsel::integration
