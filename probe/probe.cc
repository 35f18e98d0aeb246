#include "probe/probe.h"

#include <sys/utsname.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "matcher/features.h"
#include "probe/arm.h"
#include "probe/cpuid_x86.h"
#include "probe/cpuinfo.h"
#include "probe/hardware.h"
#include "probe/hooks.h"
#include "probe/host_files.h"
#include "probe/kernel.h"
#include "probe/os_release.h"

namespace imgsel::probe {
namespace {

constexpr size_t kMaxModules = 65536;

std::string Bool(bool b) { return b ? "true" : "false"; }

// The kernel's machine name ("x86_64", "aarch64"): <root>/proc/sys/kernel/arch,
// uname(2) on the real host, else what /proc/cpuinfo looks like.
std::string MachineName(const HostFiles& files, const std::optional<CpuInfo>& cpuinfo) {
  if (auto arch = files.ReadValue("/proc/sys/kernel/arch"); arch.ok() && !arch->empty()) {
    return *arch;
  }
  if (files.is_real_root()) {
    struct utsname u;
    if (::uname(&u) == 0) return u.machine;
  }
  if (cpuinfo) {
    if (cpuinfo->is_x86()) return "x86_64";
    if (cpuinfo->cpu_architecture == "8" || cpuinfo->cpu_architecture == "AArch64") {
      return "aarch64";
    }
    if (cpuinfo->is_arm()) return "arm";
  }
  return "";
}

std::string KernelRelease(const HostFiles& files) {
  if (auto r = files.ReadValue("/proc/sys/kernel/osrelease"); r.ok()) return *r;
  if (files.is_real_root()) {
    struct utsname u;
    if (::uname(&u) == 0) return u.release;
  }
  return "";
}

// Canonical names of the table's features among kernel/HWCAP spellings.
std::set<std::string> Canonicalize(const std::set<std::string>& names) {
  std::set<std::string> out;
  for (const std::string& n : names) {
    if (auto c = CanonicalFeature(n)) out.insert(std::move(*c));
  }
  return out;
}

void ProbeKernel(const HostFiles& files, NfdFeatures& nfd, std::vector<std::string>& warnings) {
  std::string release = KernelRelease(files);
  if (release.empty()) {
    warnings.push_back(absl::StrCat(files.Path("/proc/sys/kernel/osrelease"), ": unreadable"));
  } else {
    nfd.attributes["kernel.version"] = KernelVersionAttributes(release);
  }

  std::set<std::string> loaded;
  if (auto m = files.Read("/proc/modules", kLargeFileBytes); m.ok()) {
    loaded = ParseProcModules(*m);
    nfd.flags["kernel.loadedmodule"] = loaded;
  } else if (!absl::IsNotFound(m.status())) {
    warnings.push_back(std::string(m.status().message()));
  }
  std::set<std::string> enabled = loaded;
  if (!release.empty()) {
    auto b =
        files.Read(absl::StrCat("/lib/modules/", release, "/modules.builtin"), kLargeFileBytes);
    if (b.ok()) {
      enabled.merge(ParseModulesBuiltin(*b));
    } else if (!absl::IsNotFound(b.status())) {
      warnings.push_back(std::string(b.status().message()));
    }
  }
  if (enabled.size() > kMaxModules) {
    warnings.push_back(absl::StrCat("more than ", kMaxModules, " kernel modules; list dropped"));
    enabled.clear();
    nfd.flags.erase("kernel.loadedmodule");
  }
  if (!enabled.empty() || nfd.flags.count("kernel.loadedmodule")) {
    nfd.flags["kernel.enabledmodule"] = std::move(enabled);
  }

  // The running kernel's config: /proc/config.gz (CONFIG_IKCONFIG_PROC), else /boot.
  std::string config_text, config_path;
  if (auto gz = files.Read("/proc/config.gz", kLargeFileBytes); gz.ok()) {
    config_path = files.Path("/proc/config.gz");
    auto text = Gunzip(*gz, kLargeFileBytes);
    if (text.ok()) {
      config_text = std::move(*text);
    } else {
      warnings.push_back(absl::StrCat(config_path, ": ", text.status().message()));
      config_path.clear();
    }
  }
  if (config_path.empty() && !release.empty()) {
    std::string boot = absl::StrCat("/boot/config-", release);
    if (auto text = files.Read(boot, kLargeFileBytes); text.ok()) {
      config_path = files.Path(boot);
      config_text = std::move(*text);
    } else if (!absl::IsNotFound(text.status())) {
      warnings.push_back(std::string(text.status().message()));
    }
  }
  if (!config_path.empty()) {
    auto config = ParseKernelConfig(config_text);
    if (config.ok()) {
      nfd.attributes["kernel.config"] = std::move(*config);
    } else {
      warnings.push_back(absl::StrCat(config_path, ": ", config.status().message()));
    }
  }
}

void ProbeOsRelease(const HostFiles& files, NfdFeatures& nfd, std::vector<std::string>& warnings) {
  for (absl::string_view path : {"/etc/os-release", "/usr/lib/os-release"}) {
    auto text = files.Read(path);
    if (!text.ok()) {
      if (absl::IsNotFound(text.status())) continue;
      warnings.push_back(std::string(text.status().message()));
      return;
    }
    auto keys = ParseOsRelease(*text);
    if (!keys.ok()) {
      warnings.push_back(absl::StrCat(files.Path(path), ": ", keys.status().message()));
      return;
    }
    nfd.attributes["system.osrelease"] = std::move(*keys);
    return;
  }
  warnings.push_back(absl::StrCat(files.Path("/etc/os-release"), ": not found"));
}

}  // namespace

std::string X86VendorName(absl::string_view v) {
  // klauspost/cpuid's vendor names, which NFD writes.
  struct Vendor {
    absl::string_view cpuid, name;
  };
  static constexpr Vendor kVendors[] = {
      {"GenuineIntel", "Intel"},     {"AuthenticAMD", "AMD"},       {"AMDisbetter!", "AMD"},
      {"HygonGenuine", "Hygon"},     {"CentaurHauls", "VIA"},       {"VIA VIA VIA ", "VIA"},
      {"TransmetaCPU", "Transmeta"}, {"GenuineTMx86", "Transmeta"}, {"Geode by NSC", "NSC"},
      {"KVMKVMKVMKVM", "KVM"},       {"Microsoft Hv", "MSVM"},      {"VMwareVMware", "VMware"},
      {"XenVMMXenVMM", "XenHVM"},    {"bhyve bhyve ", "Bhyve"},     {"SiS SiS SiS ", "SiS"},
      {"Vortex86 SoC", "SiS"},       {"Genuine  RDC", "RDC"},
  };
  for (const Vendor& e : kVendors) {
    if (e.cpuid == v) return std::string(e.name);
  }
  return std::string(v);
}

absl::StatusOr<ProbeResult> ProbeHost(const ProbeOptions& options) {
  HostFiles files(options.root);
  ProbeResult result;
  std::vector<std::string>& warnings = result.warnings;
  HostProfile& profile = result.profile;
  NfdFeatures& nfd = profile.nfd;

  std::optional<CpuInfo> cpuinfo;
  std::string cpuinfo_path = files.Path("/proc/cpuinfo");
  absl::Status cpuinfo_error;
  if (auto text = files.Read("/proc/cpuinfo", kLargeFileBytes); text.ok()) {
    auto parsed = ParseCpuinfo(*text);
    if (parsed.ok()) {
      cpuinfo = std::move(*parsed);
    } else {
      cpuinfo_error =
          absl::InvalidArgumentError(absl::StrCat(cpuinfo_path, ": ", parsed.status().message()));
    }
  } else {
    cpuinfo_error = text.status();
  }

  Platform platform;
  platform.os = "linux";
  platform.architecture = MachineName(files, cpuinfo);
  platform = NormalizePlatform(platform);
  const std::string& arch = platform.architecture;

  std::optional<X86Cpu> x86 = options.use_cpuid ? ProbeCpuid() : std::nullopt;
  if (arch != "amd64" && arch != "386") x86.reset();  // a root for another machine
  std::set<std::string> cpu_features;                 // canonical
  std::string vendor, family, model_id;
  if (x86) {
    cpu_features = x86->features;
    vendor = X86VendorName(x86->vendor_id);
    family = absl::StrCat(x86->family);
    model_id = absl::StrCat(x86->model);
    result.cpu_model = x86->brand;
  } else if (options.use_cpuid && arch == "arm64" && !Arm64AuxvFeatures().empty()) {
    cpu_features = Canonicalize(Arm64AuxvFeatures());
  } else if (cpuinfo) {
    cpu_features = Canonicalize(cpuinfo->flags);
  } else {
    return cpuinfo_error.ok() ? absl::NotFoundError(absl::StrCat(cpuinfo_path, ": no CPU facts"))
                              : cpuinfo_error;
  }
  if (!cpuinfo_error.ok()) warnings.push_back(std::string(cpuinfo_error.message()));
  if (cpuinfo) {
    if (vendor.empty() && cpuinfo->is_x86()) {
      vendor = X86VendorName(cpuinfo->vendor_id);
      if (cpuinfo->family) family = absl::StrCat(*cpuinfo->family);
      if (cpuinfo->model) model_id = absl::StrCat(*cpuinfo->model);
    } else if (vendor.empty() && cpuinfo->cpu_implementer) {
      vendor = ArmVendorName(*cpuinfo->cpu_implementer);
      family = cpuinfo->cpu_architecture;
      if (cpuinfo->cpu_part) model_id = absl::StrCat(*cpuinfo->cpu_part);
    }
    if (result.cpu_model.empty()) result.cpu_model = cpuinfo->model_name;
  }

  if (arch == "amd64") {
    int level = X86Level(cpu_features);
    platform.variant = level > 1 ? absl::StrCat("v", level) : "";
  } else if (arch == "arm64") {
    platform.variant = Arm64Variant(cpu_features);
  } else if (arch == "arm" && cpuinfo) {
    platform.variant = ArmVariant(cpuinfo->cpu_architecture);
  }
  profile.platform = NormalizePlatform(platform);

  for (const std::string& f : cpu_features) nfd.flags["cpu.cpuid"].insert(NfdCpuidName(f));
  auto& cpu_model = nfd.attributes["cpu.model"];
  if (!vendor.empty()) cpu_model["vendor_id"] = vendor;
  if (!family.empty()) cpu_model["family"] = family;
  if (!model_id.empty()) cpu_model["id"] = model_id;
  if (cpu_model.empty()) nfd.attributes.erase("cpu.model");

  profile.features.insert(cpu_features.begin(), cpu_features.end());
  for (const std::string& declared : options.declared_features) {
    std::vector<std::string> names = CanonicalFeatures(declared);
    if (names.empty()) {
      warnings.push_back(absl::StrCat("[host] features: \"", declared,
                                      "\" is not a feature any table knows; kept as written"));
      names.push_back(absl::AsciiStrToLower(declared));
    }
    profile.features.insert(names.begin(), names.end());
  }

  // Topology, NUMA, PCI.
  Hardware hw;
  bool have_hw = false;
  if (options.use_hwloc && files.is_real_root()) {
    auto h = ProbeHardwareHwloc();
    if (h.ok()) {
      hw = std::move(*h);
      have_hw = true;
    } else {
      warnings.push_back(absl::StrCat(h.status().message(), "; reading /sys directly"));
    }
  }
  if (!have_hw) hw = ProbeHardwareSysfs(files, warnings);
  if (hw.sockets == 0 && cpuinfo && !cpuinfo->physical_ids.empty()) {
    hw.sockets = static_cast<int>(cpuinfo->physical_ids.size());
  }
  if (hw.sockets == 0) hw.sockets = 1;
  if (!hw.smt && cpuinfo) hw.smt = cpuinfo->smt;
  result.cpu_threads = hw.threads > 0 ? hw.threads : (cpuinfo ? cpuinfo->processors : 0);
  nfd.attributes["cpu.topology"] = {{"hardware_multithreading", Bool(hw.smt)},
                                    {"socket_count", absl::StrCat(hw.sockets)}};
  nfd.attributes["memory.numa"] = {{"is_numa", Bool(hw.numa_nodes > 1)},
                                   {"node_count", absl::StrCat(hw.numa_nodes)}};
  if (!hw.pci.empty()) {
    auto& instances = nfd.instances["pci.device"];
    for (const PciDevice& d : hw.pci) {
      std::map<std::string, std::string> attrs = {
          {"vendor", d.vendor}, {"device", d.device}, {"class", d.class_code}};
      if (!d.subsystem_vendor.empty()) attrs["subsystem_vendor"] = d.subsystem_vendor;
      if (!d.subsystem_device.empty()) attrs["subsystem_device"] = d.subsystem_device;
      instances.push_back(std::move(attrs));
    }
  }
  std::string nvidia;
  if (auto nv = files.Read("/proc/driver/nvidia/version"); nv.ok()) {
    nvidia = std::move(*nv);
  } else if (!absl::IsNotFound(nv.status())) {
    warnings.push_back(std::string(nv.status().message()));
  }
  result.gpus = FindGpus(hw.pci, nvidia);
  // GPUs also go into the profile, so compatibility specs can require them:
  // one `gpu.device` instance each, and the NVIDIA driver as an attribute
  // (NFD has no core GPU source; these names are imgsel's, in NFD's shapes).
  for (const Gpu& g : result.gpus) {
    std::map<std::string, std::string> attrs = {
        {"vendor", g.vendor}, {"device", g.device}, {"vendor_name", g.vendor_name}};
    if (!g.driver_version.empty()) attrs["driver_version"] = g.driver_version;
    nfd.instances["gpu.device"].push_back(std::move(attrs));
    if (!g.driver_version.empty())
      nfd.attributes["gpu.nvidia"]["driver_version"] = g.driver_version;
  }

  ProbeKernel(files, nfd, warnings);
  ProbeOsRelease(files, nfd, warnings);

  // Operator additions: hooks first, so `[host] attributes` has the last word.
  std::map<std::string, std::string> local;
  if (!options.hooks_dir.empty()) {
    HookOptions hook_options;
    hook_options.dir = options.hooks_dir;
    hook_options.timeout = options.hook_timeout;
    hook_options.output_cap = options.hook_output_cap;
    HookResults hooks = RunHooks(hook_options);
    local = std::move(hooks.features);
    warnings.insert(warnings.end(), hooks.warnings.begin(), hooks.warnings.end());
  }
  for (const auto& [k, v] : options.declared_attributes) local[k] = v;
  if (!local.empty()) nfd.attributes["local.feature"] = std::move(local);

  return result;
}

}  // namespace imgsel::probe
