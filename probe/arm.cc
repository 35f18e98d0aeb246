#include "probe/arm.h"

#include <sys/auxv.h>

#include <cctype>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "matcher/features.h"

namespace imgsel::probe {
namespace {

// Linux arch/arm64/include/uapi/asm/hwcap.h, bit by bit.
constexpr const char* kHwcap[] = {
    "fp",      "asimd", "evtstrm", "aes",   "pmull",    "sha1",   "sha2", "crc32",
    "atomics", "fphp",  "asimdhp", "cpuid", "asimdrdm", "jscvt",  "fcma", "lrcpc",
    "dcpop",   "sha3",  "sm3",     "sm4",   "asimddp",  "sha512", "sve",  "asimdfhm",
    "dit",     "uscat", "ilrcpc",  "flagm", "ssbs",     "sb",     "paca", "pacg",
};
constexpr const char* kHwcap2[] = {
    "dcpodp", "sve2",  "sveaes",  "svepmull", "svebitperm", "svesha3", "svesm4",
    "flagm2", "frint", "svei8mm", "svef32mm", "svef64mm",   "svebf16", "i8mm",
    "bf16",   "dgh",   "rng",     "bti",      "mte",
};

}  // namespace

std::set<std::string> Arm64HwcapFeatures(unsigned long hwcap, unsigned long hwcap2) {
  std::set<std::string> out;
  for (size_t i = 0; i < std::size(kHwcap); ++i) {
    if ((hwcap >> i) & 1) out.emplace(kHwcap[i]);
  }
  for (size_t i = 0; i < std::size(kHwcap2); ++i) {
    if ((hwcap2 >> i) & 1) out.emplace(kHwcap2[i]);
  }
  return out;
}

std::string Arm64Variant(const std::set<std::string>& features) {
  // One table for versions (matcher/features.h): what the probe calls v8.2
  // is what a v8.2 profile is believed to have.
  FeatureSet has;
  for (const std::string& f : features) {
    if (const FeatureSet* need = FeatureNeed(f)) has |= *need;
  }
  return HighestArm64Variant(has);
}

std::string ArmVariant(absl::string_view cpu_architecture) {
  if (cpu_architecture.empty() || !std::isdigit(static_cast<unsigned char>(cpu_architecture[0]))) {
    return "";
  }
  int v = cpu_architecture[0] - '0';
  if (v < 5) return "";
  if (v > 8) v = 8;
  return absl::StrCat("v", v);
}

std::string ArmVendorName(int implementer) {
  switch (implementer) {
    case 0x41:
      return "ARM";
    case 0x42:
      return "Broadcom";
    case 0x43:
      return "Cavium";
    case 0x44:
      return "DEC";
    case 0x46:
      return "Fujitsu";
    case 0x48:
      return "HiSilicon";
    case 0x49:
      return "Infineon";
    case 0x4d:
      return "Motorola";
    case 0x4e:
      return "NVIDIA";
    case 0x50:
      return "AMCC";
    case 0x51:
      return "Qualcomm";
    case 0x56:
      return "Marvell";
    case 0x61:
      return "Apple";
    case 0x69:
      return "Intel";
    case 0xc0:
      return "Ampere";
  }
  return absl::StrFormat("0x%02x", implementer);
}

std::set<std::string> Arm64AuxvFeatures() {
#if defined(__aarch64__)
  return Arm64HwcapFeatures(getauxval(AT_HWCAP), getauxval(AT_HWCAP2));
#else
  return {};
#endif
}

}  // namespace imgsel::probe
