#include "config/loopback_address.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace imgsel {

absl::StatusOr<LoopbackAddress> ParseLoopbackAddress(const std::string& address) {
  LoopbackAddress out;
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
  if (host == "localhost" || host == "127.0.0.1") {
    out.host = "127.0.0.1";
  } else if (host == "::1") {
    out.host = "::1";
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address \"", address, "\": only loopback (127.0.0.1, ::1, localhost) is allowed"));
  }
  return out;
}

}  // namespace imgsel
