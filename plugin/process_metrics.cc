#include "plugin/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "oci/file_read.h"

namespace imgsel::plugin {
namespace {

// Positions in the fields after the command name; field 3 (state) is 0.
constexpr size_t kUtime = 14 - 3;
constexpr size_t kStime = 15 - 3;
constexpr size_t kThreads = 20 - 3;
constexpr size_t kRssPages = 24 - 3;
// /proc/self/stat is one line of a few hundred bytes.
constexpr size_t kMaxStatBytes = 4096;

}  // namespace

absl::StatusOr<ProcessStats> ParseProcStat(absl::string_view stat, int64_t ticks_per_second,
                                           int64_t page_bytes) {
  const size_t close = stat.rfind(')');
  if (close == absl::string_view::npos) {
    return absl::InvalidArgumentError("stat: no command name in parentheses");
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(stat.substr(close + 1), ' ', absl::SkipWhitespace());
  if (fields.size() <= kRssPages) {
    return absl::InvalidArgumentError(
        absl::StrCat("stat: ", fields.size() + 2, " fields, expected at least ", kRssPages + 4));
  }
  int64_t utime = 0, stime = 0, threads = 0, rss = 0;
  if (!absl::SimpleAtoi(fields[kUtime], &utime) || !absl::SimpleAtoi(fields[kStime], &stime) ||
      !absl::SimpleAtoi(fields[kThreads], &threads) || !absl::SimpleAtoi(fields[kRssPages], &rss) ||
      ticks_per_second <= 0) {
    return absl::InvalidArgumentError("stat: utime, stime, num_threads or rss is not a number");
  }
  ProcessStats s;
  s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks_per_second);
  s.threads = threads;
  s.resident_bytes = rss * page_bytes;
  return s;
}

absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& proc_dir) {
  auto text = ReadFileBounded(proc_dir + "/stat", kMaxStatBytes);
  if (!text.ok()) return text.status();
  auto stats = ParseProcStat(*text, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE));
  if (!stats.ok()) return stats.status();
  DIR* dir = opendir((proc_dir + "/fd").c_str());
  if (dir == nullptr) {
    return absl::UnavailableError(absl::StrCat(proc_dir, "/fd: cannot list"));
  }
  int64_t count = 0;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    if (++count >= kMaxCountedFds) break;
  }
  closedir(dir);
  stats->open_fds = count;
  return stats;
}

void RenderProcessStats(std::string& out, const ProcessStats& stats) {
  absl::StrAppend(&out,
                  "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                  "# TYPE process_resident_memory_bytes gauge\n"
                  "process_resident_memory_bytes ",
                  stats.resident_bytes, "\n");
  absl::StrAppend(&out,
                  "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
                  "seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ",
                  absl::StrFormat("%.2f", stats.cpu_seconds), "\n");
  absl::StrAppend(&out,
                  "# HELP process_threads Number of OS threads in the process.\n"
                  "# TYPE process_threads gauge\nprocess_threads ",
                  stats.threads, "\n");
  absl::StrAppend(&out,
                  "# HELP process_open_fds Number of open file descriptors.\n"
                  "# TYPE process_open_fds gauge\nprocess_open_fds ",
                  stats.open_fds, "\n");
}

}  // namespace imgsel::plugin
