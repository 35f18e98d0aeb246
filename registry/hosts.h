// Which URLs serve a registry: containerd's registry host configuration
// (`[plugins."io.containerd.grpc.v1.cri".registry] config_path`), reused as is.
//
//   <root>/<host>/hosts.toml        looked up as "host_port_", "host:port",
//                                   then "_default", under each root of the
//                                   config_path list in turn; none: the
//                                   registry itself
//
//   server = "https://registry.example.com"   # default: https://<host>; docker.io
//                                             # means https://registry-1.docker.io
//   [host."https://mirror.example.com"]       # tried first, in file order
//     capabilities = ["pull", "resolve"]      # default: pull, resolve, push
//     skip_verify = true
//     ca = "mirror.crt"                       # or a list; relative to hosts.toml
//     override_path = true                    # the URL path is the API root
//     client = "client.pem"                   # or [["client.cert", "client.key"]]: one
//     dial_timeout = "3s"                     # this host's connect timeout
//     [host."https://mirror.example.com".header]
//       x-custom = "value"
//   [host."http://10.0.0.5:5000"]             # plain HTTP
//
// A header name must be an HTTP field name and its value may hold no control
// character but a tab: each is sent as one request line, and a line break
// in it would add a header the file does not declare (an error naming
// file:line). Every endpoint's `api_root` ends in "/v2" unless override_path. A mirror
// (any endpoint other than the registry host itself) gets "?ns=<registry>"
// on its requests, as containerd sends. A key containerd does not read is an
// error naming file:line (containerd passes over it; a misspelt key would
// otherwise quietly not apply). toml++ exceptions are caught here
// and reported as file:line.
//
// Pure functions of their inputs (plus the files read); thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "registry/http.h"

namespace imgsel::registry {

enum Capability : uint32_t { kCapPull = 1, kCapResolve = 2, kCapPush = 4 };

struct RegistryEndpoint {
  std::string api_root;  // "https://mirror.example.com/v2"
  uint32_t capabilities = kCapPull | kCapResolve | kCapPush;
  TlsOptions tls;
  std::vector<std::string> headers;  // "Name: value" from [header]
  std::string ns;                    // non-empty for a mirror: the registry it mirrors
  absl::Duration dial_timeout = absl::ZeroDuration();  // dial_timeout; zero: the client's

  bool Can(Capability c) const { return (capabilities & c) != 0; }
};

// The endpoints of `registry` ("docker.io", "localhost:5000") from a
// hosts.toml text; `dir` resolves relative CA paths, `source` names the file.
// `plain_http` makes the default server http://.
absl::StatusOr<std::vector<RegistryEndpoint>> ParseHostsToml(absl::string_view toml,
                                                             absl::string_view source,
                                                             absl::string_view dir,
                                                             absl::string_view registry,
                                                             bool plain_http);

// True for "localhost" and the address literals 127.0.0.0/8 and [::1], with
// or without a port. A name is never resolved, and one that merely starts
// with "127." ("127.evil.com") is a name, not loopback.
bool IsLoopbackRegistry(absl::string_view registry);

// The directories of a config_path: a list split on ':' as containerd 2.x
// splits its config_path (filepath.SplitList); empty entries are skipped.
// containerd 2.x's default is "/etc/containerd/certs.d:/etc/docker/certs.d".
std::vector<std::string> HostsDirRoots(absl::string_view config_path);

// Looks up `registry`'s directory under `hosts_dir` (a config_path list;
// empty: none), as containerd does: each root in order, and in it
// "host_port_", "host:port", "_default"; the first directory that exists
// wins. Its hosts.toml is parsed; a directory without one is read as
// Docker's certs.d (*.crt: CAs; *.cert and *.key: the client certificate)
// for the registry itself. With no directory, the registry itself (https,
// or http with plain_http or when IsLoopbackRegistry, as containerd and
// Docker treat those).
absl::StatusOr<std::vector<RegistryEndpoint>> EndpointsFor(const std::string& hosts_dir,
                                                           absl::string_view registry,
                                                           bool plain_http);

}  // namespace imgsel::registry
