// The host probe: what this machine is, in the terms the matcher ranks by.
//
// A probe fills a HostProfile (matcher/host_profile.h):
//
//   platform   os "linux"; architecture from the kernel; the variant the
//              hardware really supports - amd64 v1..v4 from CPUID with the
//              XGETBV check (cpuid_x86.h), arm64 v8.x/v9.x from HWCAP
//              (arm.h), 32-bit arm v5..v8 from /proc/cpuinfo
//   features   every CPU feature of the alias table the host can use, in
//              canonical names, plus the operator's `[host] features`
//   nfd        Node Feature Discovery's feature set, NFD's names and shapes:
//
//     feature               kind        from
//     cpu.cpuid             flags       CPUID / HWCAP, NFD spelling (AVX2, SSE4, FMA3)
//     cpu.model             attributes  vendor_id (Intel, AMD, ARM, ...), family, id
//     cpu.topology          attributes  hardware_multithreading, socket_count
//     kernel.version        attributes  full, major, minor, revision
//     kernel.loadedmodule   flags       /proc/modules
//     kernel.enabledmodule  flags       loaded + modules.builtin
//     kernel.config         attributes  /proc/config.gz or /boot/config-<release>
//     system.osrelease      attributes  /etc/os-release, + VERSION_ID.major/.minor
//     pci.device            instances   vendor, device, class, subsystem_vendor,
//                                       subsystem_device
//     memory.numa           attributes  is_numa, node_count
//     local.feature         attributes  `[host] attributes`, then hook output
//
// Every /proc, /sys, /etc, /boot and /lib/modules read goes through
// `root`, so tests run the probe on a fixture tree; every read is bounded
// (host_files.h). Hooks run from `hooks_dir` as it is (hooks.h).
//
// ProbeHost is thread-safe and holds no state; it costs a few milliseconds to
// tens of milliseconds (hwloc), so long-running callers probe once and keep
// the result.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "matcher/host_profile.h"
#include "probe/gpus.h"

namespace imgsel::probe {

struct ProbeOptions {
  std::string root = "/";  // prefix for every host file read
  // false on fixture trees: CPU facts then come from <root>/proc/cpuinfo
  // instead of the CPUID instruction and getauxval.
  bool use_cpuid = true;
  // false, or a root other than "/": topology and PCI from /sys directly.
  bool use_hwloc = true;
  std::vector<std::string> declared_features;              // [host] features
  std::map<std::string, std::string> declared_attributes;  // [host] attributes
  std::string hooks_dir;                                   // empty: no hooks
  absl::Duration hook_timeout = absl::Seconds(2);
  size_t hook_output_cap = 64 << 10;
};

struct ProbeResult {
  HostProfile profile;
  std::string cpu_model;  // "AMD EPYC 7B13", for people
  int cpu_threads = 0;    // logical CPUs
  std::vector<Gpu> gpus;
  // Things skipped or unreadable, each naming the file or hook; the profile
  // is still usable.
  std::vector<std::string> warnings;
};

// Probes the host. An error (naming the file) only when the CPU cannot be
// identified at all: no CPUID/HWCAP and an unreadable or malformed
// <root>/proc/cpuinfo. Everything else missing becomes a warning.
absl::StatusOr<ProbeResult> ProbeHost(const ProbeOptions& options);

// NFD's vendor_id for an x86 CPUID vendor string ("GenuineIntel" -> "Intel").
std::string X86VendorName(absl::string_view cpuid_vendor);

}  // namespace imgsel::probe
