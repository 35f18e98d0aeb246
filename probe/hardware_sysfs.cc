#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "probe/hardware.h"

namespace imgsel::probe {
namespace {

bool NumberedEntry(absl::string_view name, absl::string_view prefix) {
  if (!absl::StartsWith(name, prefix) || name.size() == prefix.size()) return false;
  for (char c : name.substr(prefix.size())) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// "0x10de" -> "10de"; `digits` hex digits kept from the left ("0x030000" -> "0300").
std::optional<std::string> HexId(absl::string_view v, size_t digits) {
  v = absl::StripAsciiWhitespace(v);
  if (absl::StartsWith(v, "0x")) v.remove_prefix(2);
  if (v.size() < digits) return std::nullopt;
  v = v.substr(0, digits);
  for (char c : v) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  return absl::AsciiStrToLower(v);
}

}  // namespace

Hardware ProbeHardwareSysfs(const HostFiles& files, std::vector<std::string>& warnings) {
  Hardware hw;
  constexpr absl::string_view kCpuDir = "/sys/devices/system/cpu";
  if (auto cpus = files.List(kCpuDir); cpus.ok()) {
    std::set<std::string> packages;
    std::set<std::pair<std::string, std::string>> cores;
    for (const std::string& cpu : *cpus) {
      if (!NumberedEntry(cpu, "cpu")) continue;
      ++hw.threads;
      std::string base = absl::StrCat(kCpuDir, "/", cpu, "/topology/");
      auto pkg = files.ReadValue(base + "physical_package_id");
      auto core = files.ReadValue(base + "core_id");
      auto siblings = files.ReadValue(base + "thread_siblings_list");
      if (pkg.ok()) packages.insert(*pkg);
      if (pkg.ok() && core.ok()) cores.emplace(*pkg, *core);
      if (siblings.ok() && siblings->find_first_of(",-") != std::string::npos) hw.smt = true;
    }
    hw.sockets = static_cast<int>(packages.size());
    hw.cores = static_cast<int>(cores.size());
  } else {
    warnings.push_back(std::string(cpus.status().message()));
  }
  if (auto nodes = files.List("/sys/devices/system/node"); nodes.ok()) {
    for (const std::string& n : *nodes) hw.numa_nodes += NumberedEntry(n, "node") ? 1 : 0;
  }
  // A kernel without NUMA support has no node directory: one node.
  if (hw.numa_nodes == 0) hw.numa_nodes = 1;

  constexpr absl::string_view kPciDir = "/sys/bus/pci/devices";
  auto devices = files.List(kPciDir);
  if (!devices.ok()) {
    if (!absl::IsNotFound(devices.status())) {
      warnings.push_back(std::string(devices.status().message()));
    }
    return hw;
  }
  for (const std::string& addr : *devices) {
    std::string base = absl::StrCat(kPciDir, "/", addr, "/");
    PciDevice dev{addr, "", "", "", "", ""};
    struct Field {
      const char* file;
      std::string* out;
      bool required;
    } fields[] = {{"vendor", &dev.vendor, true},
                  {"device", &dev.device, true},
                  {"class", &dev.class_code, true},
                  {"subsystem_vendor", &dev.subsystem_vendor, false},
                  {"subsystem_device", &dev.subsystem_device, false}};
    bool ok = true;
    for (Field& f : fields) {
      auto v = files.ReadValue(base + f.file);
      if (!v.ok() && absl::IsNotFound(v.status()) && !f.required) continue;
      std::optional<std::string> id = v.ok() ? HexId(*v, 4) : std::nullopt;
      if (!id) {
        warnings.push_back(
            absl::StrCat(files.Path(base + f.file), ": not a PCI id; device skipped"));
        ok = false;
        break;
      }
      *f.out = *id;
    }
    if (ok) hw.pci.push_back(std::move(dev));
  }
  return hw;
}

}  // namespace imgsel::probe
