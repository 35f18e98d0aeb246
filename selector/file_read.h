// Whole-file reads (bounded) and atomic writes.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "registry/bounded_read.h"

namespace imgsel {

// ReadFileBounded comes from registry/bounded_read.h, which the registry
// client shares.

// Writes `contents` to `path` so that readers see the old file or the new
// one, never a partial one: a temporary file beside it, fsync, rename(2).
// Only a regular file (or no file) at `path` is replaced.
absl::Status WriteFileAtomic(const std::string& path, const std::string& contents);

}  // namespace imgsel
