// Atomic whole-file writes: what `imgsel probe --save` writes, so that a
// reader of the file never sees half of it.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace imgsel {

// Writes `contents` to `path` so that readers see the old file or the new
// one, never a partial one: a temporary file beside it, fsync, rename(2).
// Only a regular file (or no file) at `path` is replaced.
absl::Status WriteFileAtomic(const std::string& path, const std::string& contents);

}  // namespace imgsel
