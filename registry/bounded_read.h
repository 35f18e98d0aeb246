// Bounded file reads: the one way imgsel reads a whole file it was given or
// found (an index, a host profile, a spec, a Docker config.json, a CA
// bundle named by hosts.toml, a cached blob), so that /dev/zero, a FIFO or
// a huge file ends in an error and never in unbounded memory or a hang on
// a file that grows.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace imgsel {

// Reads `path` ("-" is standard input) up to `max_bytes`. Errors name the
// path: a directory, a file that cannot be opened (NOT_FOUND), one larger
// than the limit (INVALID_ARGUMENT, naming the limit), a failed read.
// Thread-safe.
absl::StatusOr<std::string> ReadFileBounded(const std::string& path, size_t max_bytes);

}  // namespace imgsel
