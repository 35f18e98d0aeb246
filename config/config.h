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

struct HandlerConfig {
  bool replace = false;  // mode = "replace"
  std::vector<PreferRule> prefer;
};

struct Config {
  std::string source;  // the file it came from, or "(defaults)"
  Policy policy;       // global [[prefer]] and [features]
  HostConfig host;
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
