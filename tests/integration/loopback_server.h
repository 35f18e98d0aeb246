// The TCP server under the test proxies (round_trip_proxy.h,
// fault_proxy.h): it listens on 127.0.0.1, accepts on a thread of its own
// and serves each connection on another. Stop() makes stop_fd() readable
// and joins every thread, so serving code polls stop_fd() beside its
// sockets and no connection outlives the server. Tests only.
#pragma once

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace imgsel::integration {

// A socket listening on 127.0.0.1 on a port the kernel picks (*port);
// -1 when it cannot.
int ListenOnLoopback(int backlog, int* port);

class LoopbackServer {
 public:
  using ServeFn = std::function<void(int client)>;  // owns `client`

  // Null when it cannot listen. Nothing is accepted before Run().
  static std::unique_ptr<LoopbackServer> Listen();
  // Accepts from now on; `serve` runs on each connection's thread. Once.
  // (Two steps, so the owner can keep port() and stop_fd() before any
  // thread of the server reads what it set.)
  void Run(ServeFn serve);
  ~LoopbackServer();  // Stop()
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  // Signals stop_fd() and joins the acceptor and every connection's thread.
  // Idempotent; the owner calls it before anything `serve` reads goes away.
  void Stop();
  int port() const { return port_; }
  // An eventfd, readable once Stop() has begun.
  int stop_fd() const { return stop_fd_; }

 private:
  LoopbackServer() = default;
  void Accept();

  ServeFn serve_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<std::thread> connections_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace imgsel::integration
