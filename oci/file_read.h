// Bounded file reads: the one way imgsel reads a whole file it was given or
// found (an index, a host profile, a spec, imgsel.toml, a Docker
// config.json, a CA bundle named by hosts.toml, a cached blob, the host's
// /proc, /sys and /etc files the probe reads), so that /dev/zero, a FIFO or
// a huge file ends in an error and never in unbounded memory or a hang on
// a file that grows.
//
// Reads go to end of file, not to st_size: /proc files report size 0.
//
// Errors name the path (or "standard input"):
//   NOT_FOUND          it does not exist (or a component is not a directory)
//   PERMISSION_DENIED  it may not be opened
//   INVALID_ARGUMENT   a directory; larger than the limit (naming the limit)
//   UNAVAILABLE        any other failure to open or read
//
// Thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace imgsel {

// What opening a FIFO does.
enum class FifoOpen {
  // Wait for its writer: a file the user named may be a pipe (`<(...)`).
  kWaitForWriter,
  // Never wait: a read of a host file under a root prefix must not hang on
  // a FIFO placed there; with no data yet it fails.
  kNoWait,
};

// Reads `path` ("-" is standard input) up to `max_bytes`.
absl::StatusOr<std::string> ReadFileBounded(const std::string& path, size_t max_bytes,
                                            FifoOpen fifo = FifoOpen::kWaitForWriter);

}  // namespace imgsel
