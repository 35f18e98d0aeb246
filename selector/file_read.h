// Whole-file reads (bounded) and atomic writes.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "registry/bounded_read.h"

namespace imgsel {

// ReadFileBounded comes from registry/bounded_read.h, which the registry
// client shares.

// Writes `contents` to `path` through a temporary file and rename(2), so
// readers never see a partial file.
absl::Status WriteFileAtomic(const std::string& path, const std::string& contents);

}  // namespace imgsel
