// The registry flags of every command that talks to a registry (select,
// matrix, attach), with one spelling and one meaning:
//
//   --config FILE        imgsel.toml; its [registry] table is the base
//   --hosts-dir DIR      containerd certs.d (a `:` list, as config_path)
//   --plain-http         a registry without hosts.toml speaks http://
//   --docker-config FILE credentials (config.json)
//   --timeout SECONDS    each command says what it bounds (see its --help)
//
// A flag given overrides the config's key; a flag not given leaves it.
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "config/config.h"

namespace imgsel::cli {

struct RegistryFlags {
  std::string config;
  std::string hosts_dir;
  bool plain_http = false;
  std::string docker_config;
  double timeout_seconds = 60;
};

// Adds the five flags to `cmd`; `timeout_help` says what --timeout bounds.
void AddRegistryFlags(CLI::App* cmd, RegistryFlags* flags, const std::string& timeout_help);

// InvalidArgument unless --timeout is from 1 ms to an hour.
absl::Status CheckTimeoutFlag(double seconds);

// The flags given, over `config`'s [registry] table. InvalidArgument when
// a --hosts-dir directory does not exist: a typo given on the command line
// is said, where containerd's config_path skips a missing root.
absl::Status ApplyRegistryFlags(const RegistryFlags& flags, Config* config);

}  // namespace imgsel::cli
