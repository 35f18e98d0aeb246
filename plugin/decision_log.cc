#include "plugin/decision_log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "oci/json_writer.h"

namespace imgsel::plugin {
namespace {

std::string Timestamp(absl::Time now) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now, absl::UTCTimeZone());
}

// JSON string quoting (the one escaper the project has) of at most
// kMaxLogFieldBytes of `s`, the cut moved back to the start of a character.
std::string Quote(absl::string_view s) {
  std::string out;
  if (s.size() <= kMaxLogFieldBytes) {
    JsonWriter::AppendEscaped(out, s);
    return out;
  }
  size_t cut = kMaxLogFieldBytes;
  for (int back = 0; back < 3 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80; ++back) {
    --cut;
  }
  JsonWriter::AppendEscaped(out, absl::StrCat(s.substr(0, cut), "...(", s.size(), " bytes)"));
  return out;
}

void Field(std::string& out, absl::string_view key, absl::string_view value) {
  if (value.empty()) return;
  absl::StrAppend(&out, ",\"", key, "\":", Quote(value));
}

}  // namespace

std::string FormatDecisionLine(const DecisionLine& line, absl::Time now) {
  std::string out = absl::StrCat("{\"ts\":\"", Timestamp(now), "\",\"msg\":", Quote(line.event));
  Field(out, "image", line.image);
  Field(out, "record", line.record);
  Field(out, "outcome", line.outcome);
  Field(out, "reason", line.reason);
  Field(out, "detail", line.detail);
  Field(out, "chosen", line.chosen);
  Field(out, "index", line.index);
  Field(out, "platform", line.platform);
  Field(out, "policy", line.policy);
  absl::StrAppend(&out, ",\"handler\":", Quote(line.handler));
  Field(out, "handler_source", line.handler_source);
  Field(out, "handler_error", line.handler_error);
  absl::StrAppendFormat(&out, ",\"select_ms\":%.3f,\"total_ms\":%.3f",
                        absl::ToDoubleMilliseconds(line.select_time),
                        absl::ToDoubleMilliseconds(line.total_time));
  Field(out, "code", line.code);
  if (line.handed_over != 0) absl::StrAppend(&out, ",\"handed_over\":", line.handed_over);
  out += "}\n";
  return out;
}

LogPriority PriorityOfLevel(absl::string_view level) {
  if (level == "error") return LogPriority::kError;
  if (level == "warn" || level == "warning") return LogPriority::kWarn;
  if (level == "debug") return LogPriority::kDebug;
  return LogPriority::kInfo;
}

bool IsJournalStream(const char* journal_stream, uint64_t dev, uint64_t ino) {
  if (journal_stream == nullptr) return false;
  absl::string_view v(journal_stream);
  const size_t colon = v.find(':');
  if (colon == absl::string_view::npos) return false;
  uint64_t want_dev = 0, want_ino = 0;
  return absl::SimpleAtoi(v.substr(0, colon), &want_dev) &&
         absl::SimpleAtoi(v.substr(colon + 1), &want_ino) && want_dev == dev && want_ino == ino;
}

namespace {

// Decided once: stderr does not change for the life of the process.
bool StderrIsJournal() {
  static const bool journal = [] {
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    return IsJournalStream(getenv("JOURNAL_STREAM"), static_cast<uint64_t>(st.st_dev),
                           static_cast<uint64_t>(st.st_ino));
  }();
  return journal;
}

}  // namespace

void LogLine(const std::string& line, LogPriority priority) {
  std::string prefixed;
  const std::string* out = &line;
  if (StderrIsJournal()) {
    prefixed = absl::StrCat("<", static_cast<int>(priority), ">", line);
    out = &prefixed;
  }
  size_t off = 0;
  while (off < out->size()) {
    ssize_t n = write(STDERR_FILENO, out->data() + off, out->size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

void LogMessage(const std::string& level, const std::string& message) {
  LogLine(absl::StrCat("{\"ts\":\"", Timestamp(absl::Now()), "\",\"level\":", Quote(level),
                       ",\"msg\":", Quote(message), "}\n"),
          PriorityOfLevel(level));
}

const char* StatusCodeName(int code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int i = code;
  return i >= 0 && i < 17 ? kNames[i] : "UNKNOWN";
}

}  // namespace imgsel::plugin
