// A tiny HTTP/1.0 responder for Prometheus scrapes (`[server] metrics =
// "127.0.0.1:9464"`), on a loopback address unless `[server]
// metrics_allow_remote` (config/metrics_address.h). GET /metrics answers the
// exposition text; anything else 404 (405 for other methods).
//
// Connections are served side by side on one thread (poll), so a client
// that connects and sends nothing, or sends or reads slowly, holds no one
// else back:
//   - at most kMaxConnections are open at once; one more is answered 503
//     and closed at once rather than kept waiting;
//   - each connection has 2 s in all to send its request (cut at 8 KiB)
//     and take the answer, then it is closed.
//
// Thread-safe: Start and Stop from one thread; the render callback is
// called on the responder's thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "config/metrics_address.h"

namespace imgsel::plugin {

class MetricsHttpServer {
 public:
  static constexpr int kMaxConnections = 32;

  // Binds and starts serving; port 0 picks a free one (see port()). An
  // address that is not loopback is refused unless `allow_remote`.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, bool allow_remote, std::function<std::string()> render);
  ~MetricsHttpServer();
  void Stop();
  int port() const { return port_; }

 private:
  struct Connection;
  MetricsHttpServer() = default;
  void Run();
  // Accepts every connection waiting, refusing those past the limit; false
  // when the process is out of descriptors or memory for now.
  bool AcceptAll(std::vector<Connection>& open);
  // The whole answer to what a client sent.
  std::string Answer(const std::string& request);

  int fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::function<std::string()> render_;
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

}  // namespace imgsel::plugin
