#include "config/metrics_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace imgsel {

absl::StatusOr<MetricsAddress> ParseMetricsAddress(const std::string& address, bool allow_remote) {
  MetricsAddress out;
  absl::string_view host;
  absl::string_view port;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find("]:");
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics address \"", address, "\": expected [::1]:PORT"));
    }
    host = absl::string_view(address).substr(1, close - 1);
    port = absl::string_view(address).substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics address \"", address, "\": expected HOST:PORT"));
    }
    host = absl::string_view(address).substr(0, colon);
    port = absl::string_view(address).substr(colon + 1);
  }
  if (!absl::SimpleAtoi(port, &out.port) || out.port < 0 || out.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("metrics address \"", address, "\": bad port"));
  }
  out.host = host == "localhost" ? "127.0.0.1" : std::string(host);
  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, out.host.c_str(), &v4) == 1) {
    out.loopback = (ntohl(v4.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, out.host.c_str(), &v6) == 1) {
    out.ipv6 = true;
    out.loopback = IN6_IS_ADDR_LOOPBACK(&v6);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address,
                     "\": the host must be a numeric IP address or localhost (no name lookup)"));
  }
  if (!out.loopback && !allow_remote) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address,
                     "\": only loopback (127.0.0.1, ::1, localhost) is allowed; set [server] "
                     "metrics_allow_remote = true to serve metrics beyond this node "
                     "(unauthenticated, in clear text)"));
  }
  return out;
}

}  // namespace imgsel
