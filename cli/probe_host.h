// This host's profile for the CLI: the full probe with the config's [host]
// section (declared features and attributes, hooks). Defined in
// probe_command.cc.
#pragma once

#include "absl/status/statusor.h"
#include "config/config.h"
#include "matcher/host_profile.h"
#include "probe/probe.h"

namespace imgsel::cli {

// The probe options the config's [host] section asks for, on the real root.
probe::ProbeOptions ProbeOptionsFromConfig(const Config& config);

// Probes this host; warnings (skipped hooks, unreadable files) go to stderr.
absl::StatusOr<HostProfile> ProbeThisHost(const Config& config);

}  // namespace imgsel::cli
