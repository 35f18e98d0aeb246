// What several imgsel subcommands share: config and host-profile flags, and
// the text rendering of a decision.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "config/config.h"
#include "matcher/compat_spec.h"
#include "matcher/host_profile.h"
#include "matcher/select.h"
#include "selector/pipeline.h"

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

// A readable table: the winner marked, each candidate's reasons.
// `text` with every control byte (below 0x20, and 0x7f) written as \xNN:
// strings from an index, a registry or a spec reach the terminal this way,
// so none can move the cursor, colour the screen or forge a line.
std::string Printable(absl::string_view text);

std::string RenderDecisionText(const Decision& decision, const std::string& source,
                               const HostProfile& host);

// The same for a registry selection: where the index came from, the
// decision, and each compatibility artifact's rules as `nfd compat
// validate-node` prints them.
std::string RenderSelectionText(const Selection& selection, const HostProfile& host);

// Prints "imgsel: <message>" to stderr and returns 2 (bad input).
int BadInput(const absl::Status& status);

}  // namespace imgsel::cli
