// `[server] metrics`: the loopback address imgseld serves Prometheus text
// on. Parsed when the config is read, so a config check, a start and a
// reload all refuse a non-loopback address with the same message.
//
// Pure; no I/O.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace imgsel {

struct LoopbackAddress {
  std::string host;  // "127.0.0.1" or "::1"
  int port = 0;
};

// Parses "127.0.0.1:9464", "localhost:9464", "[::1]:9464". Any address that
// is not loopback is refused (InvalidArgument): metrics are for the node.
absl::StatusOr<LoopbackAddress> ParseLoopbackAddress(const std::string& address);

}  // namespace imgsel
