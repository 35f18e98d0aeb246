#include "registry/http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "oci/file_read.h"

namespace imgsel::registry {
namespace {

constexpr size_t kMaxHeaderBytes = size_t{64} << 10;
// A CA bundle named by hosts.toml: the whole of Debian's ca-certificates is
// about 200 KiB.
constexpr size_t kMaxCaFileBytes = 4 << 20;
constexpr size_t kMaxIdleHandles = 16;

struct Sink {
  HttpResponse* response;
  size_t max_body;
  bool reserved = false;  // the body's capacity was set from Content-Length
  size_t header_bytes = 0;
  bool headers_over_cap = false;
  bool over_cap = false;
  bool refuse_link_local = false;
  bool refused_link_local = false;
};

bool IsLinkLocalV4(const in_addr& a) { return (ntohl(a.s_addr) & 0xffff0000u) == 0xa9fe0000u; }

bool IsLinkLocalV6(const in6_addr& a) {
  if (IN6_IS_ADDR_LINKLOCAL(&a)) return true;
  if (!IN6_IS_ADDR_V4MAPPED(&a)) return false;
  in_addr v4;
  memcpy(&v4, &a.s6_addr[12], sizeof(v4));
  return IsLinkLocalV4(v4);
}

// libcurl's socket factory: the one place that sees the address a name
// resolved to, so a refused address is refused however it was spelled.
curl_socket_t OpenSocket(void* user, curlsocktype, curl_sockaddr* address) {
  auto* sink = static_cast<Sink*>(user);
  const sockaddr* sa = &address->addr;
  bool link_local = (sa->sa_family == AF_INET &&
                     IsLinkLocalV4(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr)) ||
                    (sa->sa_family == AF_INET6 &&
                     IsLinkLocalV6(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr));
  if (sink->refuse_link_local && link_local) {
    sink->refused_link_local = true;
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

long Milliseconds(absl::Duration d) {
  // libcurl reads 0 as "no timeout": a deadline that is all but spent is 1 ms.
  // Rounded up: a request that runs to a caller's deadline ends at it, not a
  // fraction of a millisecond before, when the caller would still see time
  // left and take the timeout for the registry's failure.
  return static_cast<long>(std::clamp<int64_t>(
      absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1))), 1, 1L << 30));
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t len = size * n;
  if (sink->response->body.size() + len > sink->max_body) {
    sink->over_cap = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  std::string& body = sink->response->body;
  if (body.empty() && !sink->reserved) {
    // Sized once from Content-Length (within the cap) instead of doubling
    // as it grows: a 4 MiB index then holds 4 MiB, not up to 8.
    sink->reserved = true;
    if (const std::string* cl = sink->response->Header("content-length")) {
      size_t declared = 0;
      if (absl::SimpleAtoi(*cl, &declared) && declared <= sink->max_body) body.reserve(declared);
    }
  }
  body.append(data, len);
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t len = size * n;
  sink->header_bytes += len;
  if (sink->header_bytes > kMaxHeaderBytes) {
    sink->headers_over_cap = true;
    return 0;  // aborts the transfer
  }
  absl::string_view line(data, len);
  if (absl::StartsWith(line, "HTTP/")) {
    sink->response->headers.clear();  // a new response (after 100-continue)
    return len;
  }
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return len;
  std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon)));
  std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  sink->response->headers.emplace_back(std::move(name), std::move(value));
  return len;
}

// The URL without its query, for messages (a redirect target is the server's text).
std::string ForMessage(absl::string_view url) {
  return EscapeRemoteText(url.substr(0, url.find('?')), 512);
}

}  // namespace

const std::string* HttpResponse::Header(absl::string_view lowercase_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lowercase_name) return &v;
  }
  return nullptr;
}

HttpTransport::HttpTransport() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

HttpTransport::~HttpTransport() {
  absl::MutexLock lock(&mu_);
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
  idle_.clear();
}

void* HttpTransport::TakeHandle() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpTransport::ReturnHandle(void* handle) {
  curl_easy_reset(static_cast<CURL*>(handle));
  absl::MutexLock lock(&mu_);
  if (idle_.size() < kMaxIdleHandles) {
    idle_.push_back(handle);
    return;
  }
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

absl::StatusOr<HttpResponse> HttpTransport::Perform(const HttpRequest& request) {
  std::string what = absl::StrCat(request.method, " ", ForMessage(request.url));
  std::string ca_blob;
  for (const std::string& file : request.tls.ca_files) {
    auto pem = ReadFileBounded(file, kMaxCaFileBytes);
    if (!pem.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("CA file: ", pem.status().message()));
    }
    absl::StrAppend(&ca_blob, *pem, "\n");
  }

  CURL* curl = static_cast<CURL*>(TakeHandle());
  if (curl == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  HttpResponse response;
  response.url = request.url;
  Sink sink{&response, request.max_response_bytes};
  sink.refuse_link_local = request.refuse_link_local;
  curl_slist* headers = nullptr;
  for (const std::string& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  // libcurl adds "Expect: 100-continue" to large PUTs; registries do not need it.
  headers = curl_slist_append(headers, "Expect:");

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, Milliseconds(request.connect_timeout));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, Milliseconds(request.total_timeout));
  if (request.refuse_link_local) {
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, OpenSocket);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &sink);
    // A pooled connection was opened without this check.
    curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(curl, CURLOPT_FORBID_REUSE, 1L);
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "imgsel/0.1");
  if (request.tls.skip_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!ca_blob.empty()) {
    curl_blob blob{ca_blob.data(), ca_blob.size(), CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (!request.tls.client_cert.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, request.tls.client_cert.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
    if (!request.tls.client_key.empty()) {
      curl_easy_setopt(curl, CURLOPT_SSLKEY, request.tls.client_key.c_str());
      curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
    }
  }
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  }

  CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  curl_slist_free_all(headers);
  ReturnHandle(curl);

  if (sink.refused_link_local) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, ": refused: the host is at a link-local address"));
  }
  // Unavailable, as other broken answers: callers read ResourceExhausted
  // as a body over its cap.
  if (sink.headers_over_cap) {
    return absl::UnavailableError(
        absl::StrCat(what, ": response headers exceed the limit of ", kMaxHeaderBytes, " bytes"));
  }
  if (sink.over_cap) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": response body exceeds the limit of ",
                                                     request.max_response_bytes, " bytes"));
  }
  switch (rc) {
    case CURLE_OK:
      return response;
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": timed out (connect ", absl::FormatDuration(request.connect_timeout),
                       ", total ", absl::FormatDuration(request.total_timeout), ")"));
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
      return absl::DataLossError(absl::StrCat(
          what, ": connection closed before the full response (", curl_easy_strerror(rc), ")"));
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", curl_easy_strerror(rc)));
    default:
      return absl::UnavailableError(absl::StrCat(what, ": ", curl_easy_strerror(rc)));
  }
}

std::string UrlOrigin(absl::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) return "";
  size_t host_end = url.find_first_of("/?#", scheme_end + 3);
  std::string origin = absl::AsciiStrToLower(url.substr(0, host_end));
  // Default ports are the same origin as no port.
  if (absl::StartsWith(origin, "https://") && absl::EndsWith(origin, ":443"))
    origin.resize(origin.size() - 4);
  if (absl::StartsWith(origin, "http://") && absl::EndsWith(origin, ":80"))
    origin.resize(origin.size() - 3);
  return origin;
}

std::string UrlHost(absl::string_view url) {
  std::string origin = UrlOrigin(url);
  size_t scheme_end = origin.find("://");
  if (scheme_end == std::string::npos) return "";
  absl::string_view host = absl::string_view(origin).substr(scheme_end + 3);
  if (size_t at = host.rfind('@'); at != absl::string_view::npos) host = host.substr(at + 1);
  if (absl::StartsWith(host, "[")) {
    size_t close = host.find(']');
    return std::string(host.substr(1, close == absl::string_view::npos ? close : close - 1));
  }
  return std::string(host.substr(0, host.find(':')));
}

bool IsLinkLocalAddress(absl::string_view host) {
  std::string h(host);
  in_addr v4;
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return IsLinkLocalV4(v4);
  in6_addr v6;
  // A zone ("fe80::1%eth0") is not part of the address.
  h = h.substr(0, h.find('%'));
  return inet_pton(AF_INET6, h.c_str(), &v6) == 1 && IsLinkLocalV6(v6);
}

std::string EscapeRemoteText(absl::string_view text, size_t max_bytes) {
  std::string out = absl::CHexEscape(text.substr(0, max_bytes));
  if (text.size() > max_bytes) absl::StrAppend(&out, "...");
  return out;
}

std::string ResolveLocation(absl::string_view base, absl::string_view location) {
  if (absl::StrContains(location.substr(0, location.find('/')), "://") ||
      absl::StartsWith(location, "http://") || absl::StartsWith(location, "https://")) {
    return std::string(location);
  }
  std::string origin = UrlOrigin(base);
  if (absl::StartsWith(location, "//")) {
    return absl::StrCat(base.substr(0, base.find("://") + 1), location);
  }
  if (absl::StartsWith(location, "/")) return absl::StrCat(origin, location);
  absl::string_view path = base.substr(0, base.find('?'));
  return absl::StrCat(path.substr(0, path.rfind('/') + 1), location);
}

}  // namespace imgsel::registry
