// The probe on this machine against answers that did not come from our code:
// GCC's __builtin_cpu_supports, glibc's ld.so --help, /proc/cpuinfo, uname -m
// and /etc/os-release as the shell reads it. A disagreement prints both sides.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "matcher/features.h"
#include "probe/cpuinfo.h"
#include "probe/probe.h"

namespace imgsel::probe {
namespace {

const ProbeResult& ThisHost() {
  static const ProbeResult* result = [] {
    auto r = ProbeHost(ProbeOptions{});
    EXPECT_TRUE(r.ok()) << r.status();
    return new ProbeResult(r.ok() ? *std::move(r) : ProbeResult{});
  }();
  return *result;
}

std::string RunCommand(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

TEST(Oracle, UnameMachine) {
  Platform uname;
  uname.os = "linux";
  uname.architecture = std::string(absl::StripAsciiWhitespace(RunCommand("uname -m")));
  uname = NormalizePlatform(uname);
  EXPECT_EQ(ThisHost().profile.platform.architecture, uname.architecture)
      << "uname -m says " << uname.architecture;
}

TEST(Oracle, OsReleaseAsTheShellReadsIt) {
  const char* path =
      ::access("/etc/os-release", R_OK) == 0 ? "/etc/os-release" : "/usr/lib/os-release";
  if (::access(path, R_OK) != 0) GTEST_SKIP() << "no os-release on this machine";
  // Source the file in a clean shell and print every variable it set.
  std::string shell = RunCommand(std::string("env -i sh -c 'set -a; . ") + path + "; env'");
  const auto& ours = ThisHost().profile.nfd.attributes.at("system.osrelease");
  int compared = 0;
  for (absl::string_view line : absl::StrSplit(shell, '\n', absl::SkipEmpty())) {
    size_t eq = line.find('=');
    std::string key(line.substr(0, eq));
    if (key == "PWD" || key == "SHLVL" || key == "_") continue;
    auto it = ours.find(key);
    ASSERT_NE(it, ours.end()) << "the shell sets " << key << ", the probe does not";
    EXPECT_EQ(it->second, std::string(line.substr(eq + 1))) << key;
    ++compared;
  }
  EXPECT_GT(compared, 0);
}

TEST(Oracle, KernelRelease) {
  EXPECT_EQ(ThisHost().profile.nfd.attributes.at("kernel.version").at("full"),
            std::string(absl::StripAsciiWhitespace(RunCommand("uname -r"))));
}

#if defined(__x86_64__)

// GCC's own CPU detection (libgcc's __cpu_indicator_init), which checks
// XCR0 as well. Every name GCC 12 accepts that maps to our table.
struct GccFeature {
  const char* gcc_name;
  bool supported;
};

#define GCC_FEATURE(name) \
  GccFeature { name, static_cast<bool>(__builtin_cpu_supports(name)) }

std::vector<GccFeature> GccFeatures() {
  __builtin_cpu_init();
  return {
      GCC_FEATURE("cmov"),        GCC_FEATURE("mmx"),          GCC_FEATURE("popcnt"),
      GCC_FEATURE("sse"),         GCC_FEATURE("sse2"),         GCC_FEATURE("sse3"),
      GCC_FEATURE("ssse3"),       GCC_FEATURE("sse4.1"),       GCC_FEATURE("sse4.2"),
      GCC_FEATURE("avx"),         GCC_FEATURE("avx2"),         GCC_FEATURE("sse4a"),
      GCC_FEATURE("fma4"),        GCC_FEATURE("xop"),          GCC_FEATURE("fma"),
      GCC_FEATURE("avx512f"),     GCC_FEATURE("bmi"),          GCC_FEATURE("bmi2"),
      GCC_FEATURE("aes"),         GCC_FEATURE("pclmul"),       GCC_FEATURE("avx512vl"),
      GCC_FEATURE("avx512bw"),    GCC_FEATURE("avx512dq"),     GCC_FEATURE("avx512cd"),
      GCC_FEATURE("avx512vbmi"),  GCC_FEATURE("avx512ifma"),   GCC_FEATURE("avx512vpopcntdq"),
      GCC_FEATURE("avx512vbmi2"), GCC_FEATURE("gfni"),         GCC_FEATURE("vpclmulqdq"),
      GCC_FEATURE("avx512vnni"),  GCC_FEATURE("avx512bitalg"), GCC_FEATURE("avx512bf16"),
      GCC_FEATURE("avx512fp16"),  GCC_FEATURE("avxvnni"),      GCC_FEATURE("vaes"),
      GCC_FEATURE("sha"),         GCC_FEATURE("adx"),          GCC_FEATURE("rdrnd"),
      GCC_FEATURE("rdseed"),      GCC_FEATURE("movbe"),        GCC_FEATURE("lzcnt"),
      GCC_FEATURE("cmpxchg16b"),  GCC_FEATURE("lahf_lm"),      GCC_FEATURE("f16c"),
      GCC_FEATURE("osxsave"),     GCC_FEATURE("cmpxchg8b"),    GCC_FEATURE("clflushopt"),
      GCC_FEATURE("clwb"),        GCC_FEATURE("movdiri"),      GCC_FEATURE("movdir64b"),
      GCC_FEATURE("serialize"),   GCC_FEATURE("amx-tile"),     GCC_FEATURE("amx-bf16"),
      GCC_FEATURE("amx-int8"),    GCC_FEATURE("rtm"),          GCC_FEATURE("hle"),
  };
}

TEST(Oracle, GccBuiltinCpuSupports) {
  const auto& ours = ThisHost().profile.features;
  for (const GccFeature& g : GccFeatures()) {
    std::optional<std::string> canonical = CanonicalFeature(g.gcc_name);
    ASSERT_TRUE(canonical.has_value()) << "the alias table does not know GCC's " << g.gcc_name;
    EXPECT_EQ(ours.count(*canonical) == 1, g.supported)
        << "GCC __builtin_cpu_supports(\"" << g.gcc_name << "\") = " << g.supported
        << ", probe has " << *canonical << " = " << (ours.count(*canonical) == 1);
  }
}

TEST(Oracle, GccLevels) {
  __builtin_cpu_init();
  int gcc_level = __builtin_cpu_supports("x86-64-v4")   ? 4
                  : __builtin_cpu_supports("x86-64-v3") ? 3
                  : __builtin_cpu_supports("x86-64-v2") ? 2
                                                        : 1;
  const std::string& variant = ThisHost().profile.platform.variant;
  std::string gcc_variant = gcc_level == 1 ? "" : "v" + std::to_string(gcc_level);
  EXPECT_EQ(variant, gcc_variant) << "GCC says x86-64-v" << gcc_level;
}

TEST(Oracle, GlibcLoaderLevels) {
  const char* loader = "/lib64/ld-linux-x86-64.so.2";
  if (::access(loader, X_OK) != 0) GTEST_SKIP() << loader << " not found";
  std::string help = RunCommand(std::string(loader) + " --help");
  int glibc_level = 1;
  for (int level = 4; level >= 2 && glibc_level == 1; --level) {
    std::string line = "x86-64-v" + std::to_string(level) + " (supported";
    if (help.find(line) != std::string::npos) glibc_level = level;
  }
  if (help.find("x86-64-v2 (") == std::string::npos) {
    GTEST_SKIP() << "this glibc does not list x86-64 levels";
  }
  std::string want = glibc_level == 1 ? "" : "v" + std::to_string(glibc_level);
  EXPECT_EQ(ThisHost().profile.platform.variant, want)
      << "ld.so --help says x86-64-v" << glibc_level << " is the highest supported";
}

TEST(Oracle, ProcCpuinfoFlags) {
  std::ifstream in("/proc/cpuinfo");
  std::stringstream text;
  text << in.rdbuf();
  auto info = ParseCpuinfo(text.str());
  ASSERT_TRUE(info.ok()) << info.status();
  std::set<std::string> kernel;  // canonical names of the kernel's flags
  for (const std::string& f : info->flags) {
    if (auto c = CanonicalFeature(f)) kernel.insert(*c);
  }
  // Known, explained differences between CPUID and the kernel's flags.
  struct Difference {
    const char* feature;
    const char* reason;
    bool applies;
  };
  const bool amd_zen5 = info->vendor_id == "AuthenticAMD" && info->family == 0x1a;
  const Difference differences[] = {
      // x86 cpuinfo's "cpuid" is the CPUID instruction; the table's is arm64's.
      {"cpuid", "x86 cpuinfo flag, arm64 table feature", true},
      // Linux clears RDSEED on Zen 5 (erratum); the instruction still exists
      // and GCC, like the probe, reports it.
      {"rdseed", "kernel masks RDSEED on AMD Zen 5", amd_zen5},
  };
  const auto& ours = ThisHost().profile.features;
  for (absl::string_view f : KnownCanonicalFeatures()) {
    std::string name(f);
    bool explained = false;
    for (const Difference& d : differences) {
      if (d.applies && name == d.feature) explained = true;
    }
    if (explained) continue;
    // The kernel hides OSXSAVE; its "xsave" is the CPU's XSAVE, which a kernel
    // that did not enable it would also clear.
    EXPECT_EQ(ours.count(name) == 1, kernel.count(name) == 1)
        << name << ": probe " << (ours.count(name) == 1) << ", /proc/cpuinfo "
        << (kernel.count(name) == 1);
  }
}

#endif  // __x86_64__

TEST(Oracle, HwlocAndSysfsAgree) {
  ProbeOptions sysfs;
  sysfs.use_hwloc = false;
  auto direct = ProbeHost(sysfs);
  ASSERT_TRUE(direct.ok()) << direct.status();
  const NfdFeatures& a = ThisHost().profile.nfd;
  const NfdFeatures& b = direct->profile.nfd;
  EXPECT_EQ(a.attributes.at("cpu.topology"), b.attributes.at("cpu.topology"));
  EXPECT_EQ(a.attributes.at("memory.numa"), b.attributes.at("memory.numa"));
  auto pci = [](const NfdFeatures& n) {
    auto it = n.instances.find("pci.device");
    return it == n.instances.end() ? std::vector<std::map<std::string, std::string>>{} : it->second;
  };
  EXPECT_EQ(pci(a), pci(b));
}

}  // namespace
}  // namespace imgsel::probe
