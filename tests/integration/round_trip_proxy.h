// A TCP proxy on 127.0.0.1 in front of a registry that holds every request
// for `delay` before passing it on and logs each HTTP request line with the
// time it arrived. From the log it tells how many registry round trips a
// client needed one after the other:
//
//   depth(r) = 1 + the largest depth(q) of a request q that arrived at
//              least `delay` before r (q's answer could not have reached the
//              client earlier, so r may have waited for it)
//
// Requests sent together (within `delay` of each other) share a depth; a
// request sent after another's answer is one deeper. With a delay well
// above the time a client takes to start parallel requests (tens of
// milliseconds here), the figure does not depend on the machine's speed.
//
// It can also hold requests, to stop a client at a chosen step: while
// Hold(part) is in force, a request whose line contains `part` is not
// passed on until Release(), the proxy stops, or a minute passes.
//
// Every thread is joined by the destructor; every connection is closed.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/integration/loopback_server.h"

namespace imgsel::integration {

class RoundTripProxy {
 public:
  struct Request {
    absl::Time arrived;
    std::string line;  // "GET /v2/app/manifests/v1"
  };

  // Null when it cannot listen; *why says why.
  static std::unique_ptr<RoundTripProxy> Start(int upstream_port, absl::Duration delay,
                                               std::string* why);
  ~RoundTripProxy();

  int port() const { return server_->port(); }
  // Requests logged so far, in arrival order.
  std::vector<Request> requests() const;
  // The sequential round trips of `requests` (a slice of the log).
  static int Depth(const std::vector<Request>& requests, absl::Duration delay);

  // Holds every later request whose line contains `part` ("/blobs/").
  void Hold(const std::string& part);
  // Passes on what is held, and holds nothing more.
  void Release();
  // Waits until a request is being held; false after `timeout`.
  bool AwaitHeld(absl::Duration timeout) const;

 private:
  RoundTripProxy() = default;
  void Serve(int client);

  int stop_fd_ = -1;  // the server's: readable once the proxy stops
  int upstream_port_ = 0;
  absl::Duration delay_;
  mutable absl::Mutex mu_;
  std::vector<Request> log_ ABSL_GUARDED_BY(mu_);
  std::string hold_ ABSL_GUARDED_BY(mu_);  // empty: nothing held
  int held_ ABSL_GUARDED_BY(mu_) = 0;      // requests waiting now
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<LoopbackServer> server_;  // last: stopped first
};

}  // namespace imgsel::integration
