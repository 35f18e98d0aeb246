// Internal to the registry client (client*.cc): one request as the client
// carries it through mirrors, redirects and auth (RegistryClient::Call),
// the request slots of one (registry, origin) (RegistryClient::Limiter),
// and the URL helpers those files share. Not part of the module's API.
#pragma once

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "registry/client.h"

namespace imgsel::registry {

// Error bodies, upload answers and other responses that carry no content.
inline constexpr size_t kMaxSmallResponseBytes = size_t{64} << 10;

// Origins remembered as answering with a Basic challenge (client.h).
inline constexpr size_t kMaxRememberedOrigins = 4096;

// RFC 3986 unreserved characters kept, every other byte %XX.
std::string PercentEncode(absl::string_view s);

inline absl::string_view WithoutQuery(absl::string_view url) {
  return url.substr(0, url.find('?'));
}

struct RegistryClient::Call {
  std::string method = "GET";
  std::string path;          // after "/v2/", may carry a query
  std::string absolute_url;  // instead of api_root + path (an upload Location)
  std::vector<std::string> headers;
  std::string body;
  size_t max_bytes = kMaxSmallResponseBytes;
  Capability capability = kCapPull;
  bool push = false;
  absl::Time deadline = absl::InfiniteFuture();  // the caller's
  std::string last_url;                          // set by Exchange: what the message should name
};

// At most max() requests in flight; a wait for a slot ends at a deadline.
class RegistryClient::Limiter {
 public:
  explicit Limiter(int max) : max_(max < 1 ? 1 : max) {}
  int max() const { return max_; }
  // False when no slot came free before `deadline`.
  bool Acquire(absl::Time deadline) {
    bool got = mu_.LockWhenWithDeadline(absl::Condition(
                                            +[](Limiter* l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu_) {
                                              return l->in_flight_ < l->max_;
                                            },
                                            this),
                                        deadline);
    if (got) ++in_flight_;
    mu_.Unlock();
    return got;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }

 private:
  const int max_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace imgsel::registry
