// The process's own resource figures for `[server] metrics`, read from
// /proc/self at each scrape, under the names Prometheus client libraries
// use, so existing dashboards and alerts apply:
//
//   process_resident_memory_bytes   resident set size   /proc/self/stat field 24 (pages)
//   process_cpu_seconds_total       user + system CPU   /proc/self/stat fields 14, 15 (ticks)
//   process_threads                 threads             /proc/self/stat field 20
//   process_open_fds                open descriptors    entries of /proc/self/fd
//
// imgseld runs with a memory limit (MemoryMax=) and a descriptor limit
// (LimitNOFILE=); these show how close it is to either before the kernel or
// accept() says so.
//
// Thread-safe: no state.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imgsel::plugin {

struct ProcessStats {
  double cpu_seconds = 0;
  int64_t resident_bytes = 0;
  int64_t threads = 0;
  int64_t open_fds = 0;  // counts the one descriptor reading the directory
};

// The fields of /proc/<pid>/stat text. The command name, in parentheses,
// may hold spaces and parentheses itself: the fields are counted from the
// last ')'.
absl::StatusOr<ProcessStats> ParseProcStat(absl::string_view stat, int64_t ticks_per_second,
                                           int64_t page_bytes);

// Reads `proc_dir`/stat and counts `proc_dir`/fd (at most kMaxCountedFds);
// `proc_dir` is "/proc/self" but for tests.
absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& proc_dir);

inline constexpr int64_t kMaxCountedFds = 1 << 20;

// Appends the four metrics in the exposition format.
void RenderProcessStats(std::string& out, const ProcessStats& stats);

}  // namespace imgsel::plugin
