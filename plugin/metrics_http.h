// A tiny HTTP/1.0 responder for Prometheus scrapes on a loopback address
// (`[server] metrics = "127.0.0.1:9464"`). GET /metrics answers the
// exposition text; anything else 404. One connection at a time, each one
// given 2 s in all to send its request and take the answer, requests cut at
// 8 KiB: a scraper is the only client expected, and a client that sends or
// reads slowly holds the next scrape back by 2 s at most.
//
// Thread-safe: Start and Stop from one thread; the render callback is
// called on the responder's thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "config/loopback_address.h"

namespace imgsel::plugin {

class MetricsHttpServer {
 public:
  // Binds and starts serving; port 0 picks a free one (see port()).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& address, std::function<std::string()> render);
  ~MetricsHttpServer();
  void Stop();
  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;
  void Run();
  void Serve(int conn);

  int fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::function<std::string()> render_;
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

}  // namespace imgsel::plugin
