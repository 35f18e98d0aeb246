// One HTTP exchange over libcurl, the only place imgsel touches libcurl.
//
// Contract: Perform never follows redirects (the client does, so it can drop
// credentials on a change of host), never retries, and never reads more
// than `max_response_bytes` of body: past that it stops and returns
// ResourceExhausted. Timeouts: connect and whole-request, from the request.
// Errors name the method and the URL (which never carries credentials:
// those travel in headers) and never include header values. Text a server
// chose (a URL it redirected to, an error code) reaches a message only
// through EscapeRemoteText, so a registry cannot write escape sequences to
// a terminal or a log.
//
// Thread-safe: Perform may be called from many threads; easy handles are
// pooled so connections are reused.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace imgsel::registry {

struct TlsOptions {
  bool skip_verify = false;
  std::vector<std::string> ca_files;  // PEM; empty: the system store
  // A client certificate (PEM) for TLS client authentication, and its key
  // (PEM; empty: in the certificate's file). Empty: none.
  std::string client_cert;
  std::string client_key;
};

struct HttpRequest {
  std::string method = "GET";  // GET HEAD PUT POST PATCH DELETE
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  size_t max_response_bytes = 4 << 20;
  TlsOptions tls;
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration total_timeout = absl::Seconds(30);
  // A host's own connect timeout (hosts.toml dial_timeout): when set, the
  // client uses it in place of its connect_timeout.
  absl::Duration dial_timeout = absl::ZeroDuration();
  // Never connect to a link-local address (IsLinkLocalAddress), whatever
  // name resolved to it: for the token services a registry names, which
  // must not reach a cloud metadata service.
  bool refuse_link_local = false;
};

struct HttpResponse {
  long status = 0;
  std::string url;  // the URL that answered (the request's), to resolve relative links against
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, in order
  std::string body;

  // The first header of that (lowercase) name, or nullptr.
  const std::string* Header(absl::string_view lowercase_name) const;
};

class HttpTransport {
 public:
  HttpTransport();
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Unavailable (connection failed), DeadlineExceeded (timeout),
  // ResourceExhausted (body over the cap), DataLoss (truncated body),
  // InvalidArgument (bad URL or CA file), PermissionDenied (the host is
  // link-local and the request refuses that).
  absl::StatusOr<HttpResponse> Perform(const HttpRequest& request);

 private:
  void* TakeHandle();
  void ReturnHandle(void* handle);

  absl::Mutex mu_;
  std::vector<void*> idle_ ABSL_GUARDED_BY(mu_);
};

// "scheme://host[:port]" of a URL, lowercased, for same-origin checks; empty if unparsable.
std::string UrlOrigin(absl::string_view url);
// Resolves a Location header against the URL it answered.
std::string ResolveLocation(absl::string_view base, absl::string_view location);
// The host of a URL, lowercased, without userinfo, port or IPv6 brackets.
std::string UrlHost(absl::string_view url);

// True when `host` (no port, no brackets) is an IP address literal in
// 169.254.0.0/16 or fe80::/10, or an IPv4-mapped IPv6 address in the former.
// A name is not resolved here; HttpRequest::refuse_link_local checks the
// addresses a name resolves to.
bool IsLinkLocalAddress(absl::string_view host);

// Text a remote server chose, fit for a message: control characters, DEL and
// every byte of 0x80 or more (C1 controls are two UTF-8 bytes) as \xNN,
// quotes and backslashes escaped, cut to `max_bytes` of the original first.
std::string EscapeRemoteText(absl::string_view text, size_t max_bytes = 256);

}  // namespace imgsel::registry
