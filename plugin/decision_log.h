// One structured line per pull decision, on stderr: a JSON object that log
// collectors (journald, fluent-bit) parse without configuration.
//
//   {"ts":"2026-01-02T03:04:05.678Z","msg":"pull","image":"host/app:v1",
//    "outcome":"selected","chosen":"sha256:…","index":"sha256:…",
//    "platform":"linux/amd64/v3","policy":"best","handler":"",
//    "select_ms":1.9,"total_ms":212.4,"code":"OK"}
//
// `outcome` is selected (containerd pulled imgsel's choice), untouched (a
// plain manifest or a manifest digest: nothing to choose) or fallback (the
// request went to containerd as sent; `reason` and `detail` say why).
// Credentials are never part of a line. Thread-safe: a line is written with
// one call, never interleaved.
#pragma once

#include <string>

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
  std::string code;  // the status returned to the caller
  absl::Duration select_time = absl::ZeroDuration();
  absl::Duration total_time = absl::ZeroDuration();
};

std::string FormatDecisionLine(const DecisionLine& line, absl::Time now);

// "OK", "DEADLINE_EXCEEDED", …: a grpc::StatusCode as the log line names it.
const char* StatusCodeName(int code);

// Writes one line to stderr.
void LogLine(const std::string& line);

// A plain operational message ("reload: …") in the same JSON shape.
void LogMessage(const std::string& level, const std::string& message);

}  // namespace imgsel::plugin
