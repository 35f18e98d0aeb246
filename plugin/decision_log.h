// One structured line per pull decision, on stderr: a JSON object that log
// collectors (journald, fluent-bit) parse without configuration.
//
//   {"ts":"2026-01-02T03:04:05.678Z","msg":"pull","image":"host/app:v1",
//    "outcome":"selected","chosen":"sha256:…","index":"sha256:…",
//    "platform":"linux/amd64/v3","policy":"best","handler":"",
//    "handler_source":"default","select_ms":1.9,"total_ms":212.4,"code":"OK",
//    "handed_over":2}
//
// `outcome` is selected (containerd pulled imgsel's choice), untouched (a
// plain manifest or a manifest digest: nothing to choose) or fallback (the
// request went to containerd as sent; `reason` and `detail` say why).
// `handed_over` (only when not 0) counts the blobs (the chosen manifest,
// its config) written into containerd's content store before its pull.
// Credentials are never part of a line. Thread-safe: a line is written with
// one call, never interleaved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace imgsel::plugin {

struct DecisionLine {
  std::string event = "pull";
  std::string image;
  std::string record;  // the image record written, when one was
  std::string outcome;
  std::string reason;  // fallback reason (metrics name)
  std::string detail;  // the error behind it
  std::string chosen;  // manifest digest
  std::string index;   // index digest
  std::string platform;
  std::string policy;
  std::string handler;
  // Where `handler` came from: "image_spec", "sandbox" or "default"
  // (plugin/sandbox_handlers.h); why the sandbox lookup gave nothing.
  std::string handler_source;
  std::string handler_error;
  std::string code;     // the status returned to the caller
  int handed_over = 0;  // blobs written into containerd's content store first
  absl::Duration select_time = absl::ZeroDuration();
  absl::Duration total_time = absl::ZeroDuration();
};

// What a line keeps of each string value. The values come from outside (the
// image a CRI request names, up to 16 MiB of it before it is parsed; a
// registry's error text; a runtime handler), and one pull must not write a
// line of megabytes: journald splits lines past its LineMax (48 KiB). A
// longer value keeps its first kMaxLogFieldBytes (never cut inside a UTF-8
// character) and ends with "...(N bytes)", N its whole length.
inline constexpr size_t kMaxLogFieldBytes = 2048;

std::string FormatDecisionLine(const DecisionLine& line, absl::Time now);

// "OK", "DEADLINE_EXCEEDED", …: a grpc::StatusCode as the log line names it.
const char* StatusCodeName(int code);

// Syslog priorities as sd-daemon(3) prefixes them: "<3>" error, "<4>"
// warn, "<6>" info, "<7>" debug.
enum class LogPriority { kError = 3, kWarn = 4, kInfo = 6, kDebug = 7 };
LogPriority PriorityOfLevel(absl::string_view level);

// Whether stderr is the journal's stream: JOURNAL_STREAM ("DEV:INO", set
// by systemd) names the device and inode stderr is open on.
bool IsJournalStream(const char* journal_stream, uint64_t dev, uint64_t ino);

// Writes one line to stderr. When stderr is the journal, the line starts
// with its priority ("<3>{...}"), so `journalctl -p err` finds errors;
// anywhere else the line is written as it is (pure JSON).
void LogLine(const std::string& line, LogPriority priority = LogPriority::kInfo);

// A plain operational message ("reload: …") in the same JSON shape, at the
// priority of its level; the message is cut as a decision line's values are.
void LogMessage(const std::string& level, const std::string& message);

}  // namespace imgsel::plugin
