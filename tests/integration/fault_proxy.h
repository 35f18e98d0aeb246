// A registry that misbehaves on purpose: an HTTP-aware TCP proxy on
// 127.0.0.1 in front of a real registry, which answers each request as the
// first rule whose path fragment the request's path contains says, and
// passes every other request through untouched.
//
//   fault                  what the client sees
//   kStallAfterHeaders     the upstream's status line and headers, then no
//                          byte of the body until the client gives up
//   kReset                 the connection reset (SO_LINGER 0) once the
//                          request is read
//   kServerError           500 with a registry error body
//   kTooManyRequests       429 with `Retry-After: <retry_after_seconds>`
//   kSilentRealm           401 with a Bearer challenge whose realm is a
//                          loopback port that accepts and never answers
//   kWrongDigest           the upstream's answer with `replace_from`
//                          replaced by `replace_to` (same length: the
//                          Content-Length and Docker-Content-Digest still
//                          name the original), or one byte flipped when
//                          `replace_from` is not in the body
//   kOversize              200, an index media type, and `oversize_bytes`
//                          of body (spaces), as fast as the client reads
//   kRedirect              307 to http://<redirect_to><the same path>
//   kEndlessListing        200, chunked, an index of artifact descriptors
//                          that never closes, as fast as the client reads
//
// Every connection carries one request: the proxy asks the upstream for
// `Connection: close` and says the same to the client. Every wait ends when
// the proxy stops; the destructor joins every thread and closes every socket.
// It listens only on 127.0.0.1.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/integration/loopback_server.h"

namespace imgsel::integration {

enum class Fault {
  kPass,
  kStallAfterHeaders,
  kReset,
  kServerError,
  kTooManyRequests,
  kSilentRealm,
  kWrongDigest,
  kOversize,
  kRedirect,
  kEndlessListing,
};

const char* FaultName(Fault fault);

struct FaultRule {
  std::string path_contains;  // "/v2/app/manifests/v1": matched against the request path
  Fault fault = Fault::kPass;
  int retry_after_seconds = 1;      // kTooManyRequests
  std::string redirect_to;          // kRedirect: "host:port"
  std::string replace_from;         // kWrongDigest
  std::string replace_to;           // kWrongDigest: as long as replace_from
  size_t oversize_bytes = 4 << 20;  // kOversize
  int times = -1;  // the first `times` matching requests meet the fault, the rest pass; -1: all
};

class FaultProxy {
 public:
  struct Request {
    absl::Time arrived;
    std::string line;  // "GET /v2/app/manifests/v1"
    Fault fault;       // what it was answered with
  };

  // Null when it cannot listen; *why says why.
  static std::unique_ptr<FaultProxy> Start(int upstream_port, std::vector<FaultRule> rules,
                                           std::string* why);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return server_->port(); }
  // Every request so far, in arrival order.
  std::vector<Request> requests() const;

 private:
  FaultProxy() = default;
  void Serve(int client);
  // The rule a request meets, counted; null when it passes.
  const FaultRule* RuleFor(const std::string& path);
  // One request passed to the upstream: its answer's head (status line and
  // headers, rewritten to `Connection: close`) and the body bytes read with
  // it. -1 when the upstream cannot be reached.
  int AskUpstream(const std::string& request_head, std::string* response_head,
                  std::string* body_start);
  void PassThrough(int client, const std::string& request_head);
  void StallAfterHeaders(int client, const std::string& request_head);
  void WrongDigest(int client, const std::string& request_head, const FaultRule& rule);
  void Oversize(int client, size_t bytes);
  void EndlessListing(int client);
  // Blocks until the client closes or the proxy stops.
  void Hold(int client);
  bool Send(int fd, const char* data, size_t n);
  bool Send(int fd, const std::string& data) { return Send(fd, data.data(), data.size()); }

  std::vector<FaultRule> rules_;
  int silent_fd_ = -1;  // the realm: listens, never accepts
  int silent_port_ = 0;
  int stop_fd_ = -1;  // the server's: readable once the proxy stops
  int upstream_port_ = 0;
  mutable absl::Mutex mu_;
  std::vector<Request> log_ ABSL_GUARDED_BY(mu_);
  std::vector<int> applied_ ABSL_GUARDED_BY(mu_);  // per rule: requests that met it
  std::unique_ptr<LoopbackServer> server_;         // last: stopped first
};

}  // namespace imgsel::integration
