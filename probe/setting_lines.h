// Line-oriented `NAME=value` files (os-release, kernel config, hook output):
// the one walker over their lines.
#pragma once

#include <map>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imgsel::probe {

// Calls `parse(line)` for every line of `text` that is not blank and not a
// `#` comment, whitespace-trimmed, collecting what it returns (name, value)
// into a map (a later name replaces an earlier one). An error from `parse` is
// returned with "line N: " in front. Pure; thread-safe.
absl::StatusOr<std::map<std::string, std::string>> ParseSettingLines(
    absl::string_view text,
    absl::FunctionRef<absl::StatusOr<std::pair<std::string, std::string>>(absl::string_view)>
        parse);

}  // namespace imgsel::probe
