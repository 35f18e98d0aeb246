// imgsel.toml: the operator's configuration.
//
//   version = 1
//
//   [features]
//   unknown = "reject"            # or "ignore": entries needing a feature no
//                                 # table knows are rejected / allowed
//   [host]
//   features = ["avx2"]           # declared on top of what the probe finds
//   attributes = { "vendor.example/fpga" = "true" }
//   hooks_dir = "/etc/imgsel/hooks.d"   # executables printing NFD local lines
//   hook_timeout = "2s"
//
//   [[prefer]]                    # Proposal A weights, summed per entry
//   annotation = "com.example.gpu"
//   value = "nvidia"              # or value_regex = "^nvidia"; neither: present
//   weight = 10                   # may be negative
//
//   [compat]                      # compatibility artifacts (referrers)
//   enabled = true
//   cache_dir = "/var/cache/imgsel"
//   cache_max_bytes = 268435456
//   referrers_ttl = "10m"
//   on_error = "fallback"         # or "ignore": a registry failure while
//                                 # fetching artifacts falls back to first
//                                 # match / ignores artifacts for that entry
//   max_layer_bytes = 1048576
//   [compat.groups]               # Proposal F key/value groups (GroupPolicy)
//   required = ["*"]              # groups whose keys are requirements; "*": all
//   optional_key_weight = 1       # a matching key of another group adds this
//   unknown_key = "fail"          # or "ignore": a required key the host has
//                                 # no value for fails its set / is passed over
//   nfd_groups = ["nfd", "io.kubernetes.nfd", "feature.node.kubernetes.io"]
//                                 # groups whose keys are NFD label names
//
//   [registry]
//   config_path = "/etc/containerd/certs.d"   # containerd's hosts.toml tree; a list
//                                 # split on ':' as containerd 2.x's, first match wins
//   docker_config = ""            # config.json; empty: the default location
//   connect_timeout = "5s"
//   request_timeout = "30s"
//   max_concurrent_per_registry = 128   # requests in flight per registry and
//                                 # host, 1..256 (RegistryConfig below: why 128)
//
//   [server]                      # imgseld
//   socket = "/run/imgsel/imgsel.sock"          # Selector API
//   cri_socket = "/run/imgsel/cri.sock"         # kubelet's image endpoint
//   containerd_socket = "/run/containerd/containerd.sock"
//   namespace = "k8s.io"
//   select_timeout = "2s"         # budget before falling back
//   drain_timeout = "10s"         # SIGTERM: finish in-flight calls
//   nothing_fits = "first-match"  # or "fail": no entry for this host -> ErrImagePull
//   metrics = ""                  # e.g. "127.0.0.1:9464"; empty: off
//   metrics_allow_remote = false  # true: metrics may be a non-loopback address
//   content_handover = true       # chosen manifest+config into containerd's store
//
//   [handlers.nvidia]             # CRI runtime handler
//   mode = "add"                  # or "replace": the global [[prefer]] rules
//   [[handlers.nvidia.prefer]]
//   annotation = "com.example.gpu"
//   value = "nvidia"
//   weight = 100
//
// Errors name file:line:column and what was expected; an unknown key is an
// error that suggests the closest known one. Loading is a pure function of
// the file; a Config is immutable and safe to share between threads.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "matcher/policy.h"

namespace imgsel {

struct HostConfig {
  std::vector<std::string> features;
  std::map<std::string, std::string> attributes;
  std::string hooks_dir;  // empty: no hooks
  absl::Duration hook_timeout = absl::Seconds(2);
};

struct CompatConfig {
  bool enabled = true;
  // Follow org.opencontainers.image.base.* on the eligible entries'
  // manifests (docs/compatibility.md, "Base images"); false: those
  // manifests are not read and bases are not followed.
  bool base_images = true;
  std::string cache_dir;  // empty: no disk cache
  int64_t cache_max_bytes = 256 << 20;
  absl::Duration referrers_ttl = absl::Minutes(10);
  bool fallback_on_error = true;  // on_error = "fallback" (default) / "ignore"
  int64_t max_layer_bytes = 1 << 20;
  GroupPolicy groups;  // [compat.groups]
};

struct RegistryConfig {
  std::string config_path;    // containerd certs.d; empty: none
  std::string docker_config;  // empty: the default location
  absl::Duration connect_timeout = absl::Seconds(5);
  absl::Duration request_timeout = absl::Seconds(30);
  // Requests in flight per (registry, origin). 128: a cold selection's first
  // round trip on a repository whose referrers mode is not known asks, for
  // N subjects (the index and its eligible entries), the referrers API and
  // the sha256-<hex> tag of each and each entry's manifest (for its base
  // image annotations): 3N-1 requests, 98 for an index of 32 entries, which
  // then fits one round (32 slots would take four). Sending fewer instead
  // would cost someone a round trip: without the tag probe a registry with
  // no referrers API (docker-registry, most mirrors) pays one, without the
  // manifests a level of base images does. The price is up to 128
  // connections from one node to one registry at once (HTTP/1.1: one a
  // request in flight), only for that first round of a cold pull; containerd
  // itself caps no registry's requests. 1..256.
  int max_concurrent_per_registry = 128;
  // Not a config key: the CLI's --plain-http, for a registry with no
  // hosts.toml that speaks http://.
  bool plain_http = false;
};

struct ServerConfig {
  std::string socket = "/run/imgsel/imgsel.sock";
  std::string cri_socket = "/run/imgsel/cri.sock";
  std::string containerd_socket = "/run/containerd/containerd.sock";
  std::string ns = "k8s.io";
  absl::Duration select_timeout = absl::Seconds(2);
  absl::Duration drain_timeout = absl::Seconds(10);
  std::string metrics;  // host:port (config/metrics_address.h); empty: off
  // Only with this may `metrics` be an address other nodes reach.
  bool metrics_allow_remote = false;
  // nothing_fits = "fail": a pull of an index with no entry for this host
  // is answered with an error naming why, and containerd is not asked;
  // "first-match" (the default, containerd's behaviour) forwards it.
  bool fail_when_nothing_fits = false;
  // content_handover: the chosen manifest and config imgseld fetched are
  // written into containerd's content store before containerd pulls, so it
  // does not fetch them again. false: containerd fetches everything itself.
  bool content_handover = true;
};

struct HandlerConfig {
  bool replace = false;  // mode = "replace"
  std::vector<PreferRule> prefer;
};

struct Config {
  std::string source;  // the file it came from, or "(defaults)"
  Policy policy;       // global [[prefer]] and [features]
  HostConfig host;
  CompatConfig compat;
  RegistryConfig registry;
  ServerConfig server;
  std::map<std::string, HandlerConfig> handlers;

  // The policy for a CRI runtime handler: the global rules, with the
  // handler's added or replacing them. An unknown or empty handler gets the
  // global policy.
  Policy PolicyFor(absl::string_view runtime_handler) const;
};

// Parses TOML text; `source` names it in errors.
absl::StatusOr<Config> ParseConfig(absl::string_view toml, absl::string_view source);

// Reads and parses a file (at most 1 MiB).
absl::StatusOr<Config> LoadConfig(const std::string& path);

// The configuration used when no file is given.
Config DefaultConfig();

}  // namespace imgsel
