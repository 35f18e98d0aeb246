// The kernel, as NFD's kernel.* features:
//
//   kernel.version        attributes full ("6.1.0-13-amd64"), major, minor, revision
//   kernel.loadedmodule   flags: module names from /proc/modules
//   kernel.enabledmodule  flags: loaded modules plus the built-in ones from
//                         /lib/modules/<release>/modules.builtin
//   kernel.config         attributes: every CONFIG_ option without the prefix
//                         ("X86_64" -> "y"), from /proc/config.gz (gzip) or
//                         /boot/config-<release>
//
// Parsers are pure and thread-safe.
#pragma once

#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imgsel::probe {

// full/major/minor/revision of a release string; major..revision are the
// leading numbers ("5.15.0-91-generic" -> 5, 15, 0). Missing parts are omitted.
std::map<std::string, std::string> KernelVersionAttributes(absl::string_view release);

// Module names from /proc/modules (first field of each line).
std::set<std::string> ParseProcModules(absl::string_view text);

// Module names from modules.builtin ("kernel/fs/ext4/ext4.ko" -> "ext4").
std::set<std::string> ParseModulesBuiltin(absl::string_view text);

// CONFIG_ options with their values, quotes removed; "is not set" lines skipped.
// InvalidArgument naming the line for a line that is neither.
absl::StatusOr<std::map<std::string, std::string>> ParseKernelConfig(absl::string_view text);

// The gunzipped bytes of `gz`, at most `max_bytes`; an error when the data is
// not gzip, is truncated, is larger than that, or zlib was not available at
// build time (Unimplemented).
absl::StatusOr<std::string> Gunzip(absl::string_view gz, size_t max_bytes);

}  // namespace imgsel::probe
