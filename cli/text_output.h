// The text the subcommands print for people: decisions, selections, and
// strings from outside made safe for a terminal.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "matcher/host_profile.h"
#include "matcher/select.h"
#include "selector/pipeline.h"

namespace imgsel::cli {

// `text` with every control byte (below 0x20, and 0x7f) written as \xNN:
// strings from an index, a registry or a spec reach the terminal this way,
// so none can move the cursor, colour the screen or forge a line.
std::string Printable(absl::string_view text);

// A readable table: the winner marked, each candidate's reasons.
std::string RenderDecisionText(const Decision& decision, const std::string& source,
                               const HostProfile& host);

// The same for a registry selection: where the index came from, the
// decision, and each compatibility artifact's rules as `nfd compat
// validate-node` prints them.
std::string RenderSelectionText(const Selection& selection, const HostProfile& host);

}  // namespace imgsel::cli
