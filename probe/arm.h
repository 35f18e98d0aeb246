// Arm: features from HWCAP/HWCAP2 and the architecture version they imply.
//
// On arm64 Linux the kernel publishes CPU features as bits of the auxiliary
// vector (getauxval(AT_HWCAP), AT_HWCAP2) and, with the same names, in the
// "Features" line of /proc/cpuinfo. The names are the canonical feature names
// of matcher/features.h.
//
// The version is the highest one whose mandatory, kernel-visible features are
// all present (cumulative; Arm ARM "FEAT_*" requirements):
//
//   v8.1  atomics asimdrdm crc32       v8.4  dit uscat ilrcpc flagm
//   v8.2  dcpop                        v8.5  sb flagm2 frint
//   v8.3  jscvt fcma lrcpc             v8.6  i8mm bf16
//   v9.x  sve2 on top of v8.(x+5)
//
// v8 (the baseline) is reported as the empty variant, as containerd
// normalises it. 32-bit arm takes the variant from cpuinfo's
// "CPU architecture" ("7" -> v7, "5TEJ" -> v5). Thread-safe.
#pragma once

#include <set>
#include <string>

#include "absl/strings/string_view.h"

namespace imgsel::probe {

// Feature names for the set bits of AT_HWCAP / AT_HWCAP2 (arm64).
std::set<std::string> Arm64HwcapFeatures(unsigned long hwcap, unsigned long hwcap2);

// The arm64 variant ("", "v8.1" ... "v8.6", "v9" ... "v9.1") for a feature set.
std::string Arm64Variant(const std::set<std::string>& features);

// The 32-bit arm variant ("v5" ... "v8") from cpuinfo's "CPU architecture";
// empty when it cannot be read.
std::string ArmVariant(absl::string_view cpu_architecture);

// NFD's cpu.model vendor_id for an arm "CPU implementer" code ("ARM",
// "Ampere", ...); the code in hex when unknown.
std::string ArmVendorName(int implementer);

// The features the running process sees (getauxval); empty when not arm64.
std::set<std::string> Arm64AuxvFeatures();

}  // namespace imgsel::probe
