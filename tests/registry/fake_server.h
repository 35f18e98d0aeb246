// An HTTP/1.1 server for tests: loopback only, port 0, one thread per
// connection, "Connection: close" on every answer. The handler decides the
// answer; faults (delay, truncation) are part of the answer.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace imgsel::registry::testing {

struct FakeRequest {
  std::string method;
  std::string target;                          // path and query
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;

  std::string Path() const { return target.substr(0, target.find('?')); }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

struct FakeResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  absl::Duration delay = absl::ZeroDuration();  // before anything is sent
  size_t send_only = std::string::npos;         // truncate: bytes of body actually sent
};

class FakeServer {
 public:
  using Handler = std::function<FakeResponse(const FakeRequest&)>;
  explicit FakeServer(Handler handler);
  ~FakeServer();

  int port() const { return port_; }
  std::string url() const;  // "http://127.0.0.1:<port>"
  std::vector<FakeRequest> requests() const;

 private:
  void Serve();
  void HandleConnection(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  mutable absl::Mutex mu_;
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
  std::vector<FakeRequest> log_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imgsel::registry::testing
