// Reading the host's /proc, /sys and /etc through a root prefix.
//
// Every read is bounded (oci/file_read.h, never waiting on a FIFO): a file
// larger than its limit is an error, never a partial answer, and a directory
// listing stops at a fixed number of entries.
// A HostFiles is immutable and safe to use from several threads.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imgsel::probe {

inline constexpr size_t kSmallFileBytes = 64 << 10;  // sysfs attributes, os-release
inline constexpr size_t kLargeFileBytes = 8 << 20;   // cpuinfo, modules, kernel config
inline constexpr size_t kMaxDirEntries = 4096;

class HostFiles {
 public:
  // `root` is prepended to every absolute path ("/" or "" means the real host).
  explicit HostFiles(std::string root);

  // The real path for a host path ("/proc/cpuinfo" -> "<root>/proc/cpuinfo").
  std::string Path(absl::string_view host_path) const;

  // The whole file. NotFound when it does not exist; InvalidArgument when it
  // is larger than `max_bytes`. Messages name the real path.
  absl::StatusOr<std::string> Read(absl::string_view host_path,
                                   size_t max_bytes = kSmallFileBytes) const;

  // Read() with surrounding whitespace removed, for one-value sysfs files.
  absl::StatusOr<std::string> ReadValue(absl::string_view host_path) const;

  bool Exists(absl::string_view host_path) const;

  // Names in a directory (no "." or ".."), sorted; at most kMaxDirEntries.
  absl::StatusOr<std::vector<std::string>> List(absl::string_view host_dir) const;

  const std::string& root() const { return root_; }
  bool is_real_root() const { return root_.empty(); }

 private:
  std::string root_;  // without a trailing slash; empty for "/"
};

}  // namespace imgsel::probe
