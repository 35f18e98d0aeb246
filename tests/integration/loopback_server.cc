#include "tests/integration/loopback_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <utility>

namespace imgsel::integration {

int ListenOnLoopback(int backlog, int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, backlog) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

std::unique_ptr<LoopbackServer> LoopbackServer::Listen() {
  std::unique_ptr<LoopbackServer> s(new LoopbackServer());
  s->stop_fd_ = eventfd(0, EFD_CLOEXEC);
  // A round of ~130 connections at once (a cold selection of a large
  // index) must not spill into SYN retries.
  s->listen_fd_ = ListenOnLoopback(256, &s->port_);
  if (s->stop_fd_ < 0 || s->listen_fd_ < 0) return nullptr;  // the destructor closes
  return s;
}

void LoopbackServer::Run(ServeFn serve) {
  serve_ = std::move(serve);
  acceptor_ = std::thread([this] { Accept(); });
}

void LoopbackServer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
  }
  // The acceptor first: after it has returned no connection is added.
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> connections;
  {
    absl::MutexLock lock(&mu_);
    connections.swap(connections_);
  }
  for (std::thread& t : connections) t.join();
}

LoopbackServer::~LoopbackServer() {
  Stop();
  if (listen_fd_ >= 0) close(listen_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

void LoopbackServer::Accept() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) return;
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    absl::MutexLock lock(&mu_);
    connections_.emplace_back([this, client] { serve_(client); });
  }
}

}  // namespace imgsel::integration
