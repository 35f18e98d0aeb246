// Bounded file reads: the one way imgsel reads a whole file it was given.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace imgsel {

// Reads `path` ("-" is standard input) up to `max_bytes`; a larger file is an
// error naming the path and the limit. Thread-safe.
absl::StatusOr<std::string> ReadFileBounded(const std::string& path, size_t max_bytes);

// Writes `contents` to `path` through a temporary file and rename(2), so
// readers never see a partial file.
absl::Status WriteFileAtomic(const std::string& path, const std::string& contents);

}  // namespace imgsel
