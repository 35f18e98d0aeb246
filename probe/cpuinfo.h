// /proc/cpuinfo: the kernel's view of the CPU.
//
// x86 lists one block per logical CPU with "vendor_id", "cpu family", "model",
// "model name", "flags" (kernel flag names: pni for SSE3, abm for LZCNT);
// arm64 lists "Features" (the HWCAP names), "CPU implementer", "CPU
// architecture", "CPU part"; 32-bit arm adds "model name" and an architecture
// such as "7" or "5TEJ". Flags of the first processor are taken: the kernel
// keeps only flags common to every CPU.
#pragma once

#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imgsel::probe {

struct CpuInfo {
  std::string vendor_id;               // x86 "GenuineIntel"; empty on arm
  std::string model_name;              // "model name" (x86, arm) or "Hardware"
  std::optional<int> family;           // x86 "cpu family"
  std::optional<int> model;            // x86 "model"
  std::set<std::string> flags;         // x86 "flags" or arm "Features", as the kernel spells them
  std::string cpu_architecture;        // arm "CPU architecture": "8", "7", "5TEJ"
  std::optional<int> cpu_implementer;  // arm "CPU implementer" (0x41 ARM, ...)
  std::optional<int> cpu_part;         // arm "CPU part"
  int processors = 0;                  // "processor" blocks
  std::set<std::string> physical_ids;  // x86 "physical id" values (sockets)
  bool smt = false;                    // x86 "siblings" > "cpu cores"

  bool is_x86() const { return !vendor_id.empty(); }
  bool is_arm() const { return !cpu_architecture.empty(); }
};

// Parses the text. An error (InvalidArgument, naming the line) when the text
// is not cpuinfo: no processor block, a line without "key: value", or
// neither x86 nor arm identification.
absl::StatusOr<CpuInfo> ParseCpuinfo(absl::string_view text);

}  // namespace imgsel::probe
