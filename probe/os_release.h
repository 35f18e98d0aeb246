// os-release(5): the distribution's identification, as NFD's system.osrelease.
//
// Lines are KEY=value with shell-style quoting ('...', "..." with \" \\ \$ \`
// escapes); comments and blank lines are skipped. NFD adds VERSION_ID.major
// and VERSION_ID.minor from the leading numeric parts of VERSION_ID
// ("22.04" -> 22 and 04; "12" -> 12 only). Thread-safe.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imgsel::probe {

// Every key, plus VERSION_ID.major/.minor. InvalidArgument naming the line
// for a line that is not KEY=value or has an unterminated quote.
absl::StatusOr<std::map<std::string, std::string>> ParseOsRelease(absl::string_view text);

}  // namespace imgsel::probe
