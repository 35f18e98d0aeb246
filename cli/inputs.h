// What several imgsel subcommands read from their flags: the config, the
// host profile, spec files; and how bad input ends a command.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "config/config.h"
#include "matcher/compat_spec.h"
#include "matcher/host_profile.h"

namespace imgsel::cli {

// The most validate and attach read of a spec file. Above the spec's own
// limit, so that a spec too large is reported by the spec check, in the same
// words by both, rather than as a file that cannot be read.
inline constexpr size_t kMaxSpecFileBytes = 16 * kMaxCompatSpecBytes;

// Where the CLI looks for a config when --config is not given.
inline constexpr char kDefaultConfigPath[] = "/etc/imgsel/imgsel.toml";

// --config PATH, or the default file when it exists, or the built-in defaults.
absl::StatusOr<Config> LoadConfigFlag(const std::string& path);

// --host-profile PATH, or this host (the probe, plus the config's [host]).
absl::StatusOr<HostProfile> HostFromFlags(const std::string& profile_path, const Config& config);

// Prints "imgsel: <message>" to stderr and returns 2 (bad input).
int BadInput(const absl::Status& status);

}  // namespace imgsel::cli
