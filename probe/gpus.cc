#include "probe/gpus.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace imgsel::probe {
namespace {

bool IsVersion(absl::string_view s) {
  int dots = 0;
  if (s.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(s.front())) ||
      !absl::ascii_isdigit(static_cast<unsigned char>(s.back()))) {
    return false;
  }
  for (char c : s) {
    if (c == '.') {
      ++dots;
    } else if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return dots >= 1;
}

}  // namespace

std::string GpuVendorName(absl::string_view vendor_id) {
  struct Vendor {
    absl::string_view id, name;
  };
  static constexpr Vendor kVendors[] = {
      {"10de", "NVIDIA"},    {"1002", "AMD"},      {"8086", "Intel"}, {"1a03", "ASPEED"},
      {"102b", "Matrox"},    {"15ad", "VMware"},   {"1234", "QEMU"},  {"1af4", "Red Hat"},
      {"1414", "Microsoft"}, {"5143", "Qualcomm"}, {"13b5", "ARM"},   {"1ed5", "Moore Threads"},
  };
  for (const Vendor& v : kVendors) {
    if (v.id == vendor_id) return std::string(v.name);
  }
  return std::string(vendor_id);
}

std::optional<std::string> ParseNvidiaDriverVersion(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, "NVRM version:")) continue;
    for (absl::string_view tok : absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
      if (IsVersion(tok)) return std::string(tok);
    }
  }
  return std::nullopt;
}

std::vector<Gpu> FindGpus(const std::vector<PciDevice>& pci, absl::string_view nvidia_version) {
  std::vector<Gpu> out;
  std::optional<std::string> nv = ParseNvidiaDriverVersion(nvidia_version);
  for (const PciDevice& d : pci) {
    if (d.class_code != "0300" && d.class_code != "0302") continue;
    Gpu g{d.address, d.vendor, d.device, GpuVendorName(d.vendor), ""};
    if (d.vendor == "10de" && nv) g.driver_version = *nv;
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace imgsel::probe
