// `[server] metrics`: the address imgseld serves Prometheus text on, and
// `[server] metrics_allow_remote`, which alone lets it be more than the
// node's loopback. Parsed when the config is read, so a config check, a
// start and a reload all refuse an address with the same message.
//
//   address                  metrics_allow_remote = false   = true
//   127.0.0.1:9464           served                         served
//   localhost:9464           served on 127.0.0.1            served on 127.0.0.1
//   [::1]:9464               served                         served
//   0.0.0.0:9464, [::]:9464  refused                        every interface
//   10.0.0.5:9464            refused                        that address
//   node-a:9464              refused (no name lookup)       refused
//
// Remote scrapes are unauthenticated and in clear text: the figures show
// which images the node pulls and how often (docs/config.md).
//
// Pure; no I/O.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace imgsel {

struct MetricsAddress {
  std::string host;  // a numeric address: "127.0.0.1", "::1", "0.0.0.0", ...
  int port = 0;
  bool ipv6 = false;
  bool loopback = false;  // 127.0.0.0/8 or ::1
};

// Parses HOST:PORT or [HOST]:PORT, HOST a numeric IPv4 or IPv6 address or
// "localhost". Without `allow_remote`, an address that is not loopback is
// refused (InvalidArgument) with a message naming the setting that allows it.
absl::StatusOr<MetricsAddress> ParseMetricsAddress(const std::string& address, bool allow_remote);

}  // namespace imgsel
