#include "probe/cpuinfo.h"

#include <cstdlib>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace imgsel::probe {
namespace {

// "0x41", "65" -> 65.
std::optional<int> ParseInt(absl::string_view v) {
  int out = 0;
  if (absl::StartsWith(v, "0x") || absl::StartsWith(v, "0X")) {
    if (v.size() > 2 && v.size() <= 10 && absl::SimpleHexAtoi(v.substr(2), &out)) return out;
    return std::nullopt;
  }
  if (absl::SimpleAtoi(v, &out)) return out;
  return std::nullopt;
}

bool Printable(absl::string_view line) {
  for (unsigned char c : line) {
    if (c < 0x20 && c != '\t') return false;
    if (c == 0x7f) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<CpuInfo> ParseCpuinfo(absl::string_view text) {
  CpuInfo info;
  bool first_block = true;  // flags and identification come from the first processor
  int siblings = 0, cores = 0;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos || !Printable(line)) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": expected \"key : value\""));
    }
    absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, colon));
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (key == "processor") {
      if (info.processors > 0) first_block = false;
      ++info.processors;
      continue;
    }
    if (key == "physical id") {
      info.physical_ids.emplace(value);
      continue;
    }
    if (!first_block) continue;
    if (key == "vendor_id") {
      info.vendor_id = std::string(value);
    } else if (key == "model name" || (key == "Hardware" && info.model_name.empty())) {
      // arm64 kernels name the machine in "Hardware" when there is no model name.
      info.model_name = std::string(value);
    } else if (key == "cpu family") {
      info.family = ParseInt(value);
    } else if (key == "model") {
      info.model = ParseInt(value);
    } else if (key == "flags" || key == "Features") {
      for (absl::string_view f : absl::StrSplit(value, ' ', absl::SkipEmpty())) {
        info.flags.emplace(f);
      }
    } else if (key == "CPU architecture") {
      info.cpu_architecture = std::string(value);
    } else if (key == "CPU implementer") {
      info.cpu_implementer = ParseInt(value);
    } else if (key == "CPU part") {
      info.cpu_part = ParseInt(value);
    } else if (key == "siblings") {
      siblings = ParseInt(value).value_or(0);
    } else if (key == "cpu cores") {
      cores = ParseInt(value).value_or(0);
    }
  }
  // Old arm kernels print a single "Processor : ARMv7 ..." line and no "processor".
  if (info.processors == 0 && !info.cpu_architecture.empty()) info.processors = 1;
  if (info.processors == 0) return absl::InvalidArgumentError("no \"processor\" entry");
  if (!info.is_x86() && !info.is_arm()) {
    return absl::InvalidArgumentError("neither \"vendor_id\" (x86) nor \"CPU architecture\" (arm)");
  }
  info.smt = cores > 0 && siblings > cores;
  return info;
}

}  // namespace imgsel::probe
