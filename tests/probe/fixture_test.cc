// ProbeHost on fixture trees (tests/data/probe/<host>): whole machines as
// files, so every branch of the probe runs on any build machine.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "matcher/host_profile.h"
#include "probe/probe.h"

namespace imgsel::probe {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using ::testing::Not;

ProbeOptions FixtureOptions(const std::string& host) {
  ProbeOptions options;
  options.root = std::string(IMGSEL_PROBE_FIXTURES) + "/" + host;
  options.use_cpuid = false;
  options.use_hwloc = false;
  return options;
}

std::string Attr(const HostProfile& p, const std::string& feature, const std::string& key) {
  auto f = p.nfd.attributes.find(feature);
  if (f == p.nfd.attributes.end()) return "<no " + feature + ">";
  auto v = f->second.find(key);
  return v == f->second.end() ? "<no " + key + ">" : v->second;
}

struct HostCase {
  std::string host;
  std::string platform;                      // os/arch[/variant]
  std::vector<std::string> features;         // some canonical features it must have
  std::vector<std::string> not_features;     // ones it must not have
  std::vector<std::string> cpuid;            // NFD cpu.cpuid names
  std::map<std::string, std::string> attrs;  // "feature/key" -> value
  int pci_devices;
  int gpus;
  bool kernel_config;
};

class FixtureHost : public ::testing::TestWithParam<HostCase> {};

TEST_P(FixtureHost, Profile) {
  const HostCase& c = GetParam();
  auto result = ProbeHost(FixtureOptions(c.host));
  ASSERT_TRUE(result.ok()) << result.status();
  const HostProfile& p = result->profile;
  EXPECT_EQ(FormatPlatform(p.platform), c.platform);
  EXPECT_THAT(p.features, IsSupersetOf(c.features));
  for (const std::string& f : c.not_features) EXPECT_THAT(p.features, Not(Contains(f)));
  EXPECT_THAT(p.nfd.flags.at("cpu.cpuid"), IsSupersetOf(c.cpuid));
  for (const auto& [path, want] : c.attrs) {
    size_t slash = path.find('/');
    EXPECT_EQ(Attr(p, path.substr(0, slash), path.substr(slash + 1)), want) << path;
  }
  auto pci = p.nfd.instances.find("pci.device");
  EXPECT_EQ(pci == p.nfd.instances.end() ? 0 : static_cast<int>(pci->second.size()), c.pci_devices);
  EXPECT_EQ(static_cast<int>(result->gpus.size()), c.gpus);
  EXPECT_EQ(p.nfd.attributes.count("kernel.config") == 1, c.kernel_config);

  // What `imgsel probe --save` writes is what --host-profile reads.
  auto back = ParseHostProfile(HostProfileToJson(p), c.host);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->platform, p.platform);
  EXPECT_EQ(back->features, p.features);
  EXPECT_EQ(back->nfd.flags, p.nfd.flags);
  EXPECT_EQ(back->nfd.attributes, p.nfd.attributes);
  EXPECT_EQ(back->nfd.instances, p.nfd.instances);
}

INSTANTIATE_TEST_SUITE_P(
    Hosts, FixtureHost,
    ::testing::Values(
        HostCase{"arm64-server",
                 "linux/arm64/v8.2",
                 {"asimd", "atomics", "asimddp", "crc32", "dcpop"},
                 {"sve", "avx2"},
                 {"ASIMD", "ATOMICS", "ASIMDDP", "ARMCPUID"},
                 {{"cpu.model/vendor_id", "ARM"},
                  {"cpu.model/id", "3340"},
                  {"cpu.topology/socket_count", "2"},
                  {"cpu.topology/hardware_multithreading", "false"},
                  {"memory.numa/is_numa", "true"},
                  {"memory.numa/node_count", "2"},
                  {"kernel.version/major", "5"},
                  {"kernel.version/minor", "15"},
                  {"kernel.config/NUMA", "y"},
                  {"kernel.config/MLX5_CORE", "m"},
                  {"kernel.config/LOCALVERSION", ""},
                  {"system.osrelease/ID", "ubuntu"},
                  {"system.osrelease/VERSION_ID.major", "22"},
                  {"system.osrelease/VERSION_ID.minor", "04"}},
                 1,
                 0,
                 true},
        HostCase{"nvidia-gpu",
                 "linux/amd64/v3",
                 {"avx2", "fma", "lzcnt", "sse3", "xsave", "bmi1", "movbe"},
                 {"avx512f", "sha_ni"},
                 {"AVX2", "FMA3", "SSE4", "SSE42", "LZCNT", "OSXSAVE", "CLMUL", "AESNI"},
                 {{"cpu.model/vendor_id", "Intel"},
                  {"cpu.model/family", "6"},
                  {"cpu.model/id", "158"},
                  {"cpu.topology/hardware_multithreading", "true"},
                  {"cpu.topology/socket_count", "1"},
                  {"memory.numa/is_numa", "false"},
                  {"kernel.version/full", "5.14.0-362.8.1.el9_3.x86_64"},
                  {"kernel.config/DRM", "m"},
                  {"kernel.config/DEFAULT_HOSTNAME", "(none)"},
                  {"system.osrelease/VERSION_ID.minor", "3"},
                  {"system.osrelease/CPE_NAME", "cpe:/o:redhat:enterprise_linux:9::baseos"}},
                 3,
                 2,
                 true},
        HostCase{"no-config",
                 "linux/amd64/v2",
                 {"sse4_2", "popcnt", "cx16", "lahf_lm", "sse3"},
                 {"avx", "xsave"},
                 {"SSE42", "POPCNT", "LAHF"},
                 {{"kernel.version/full", "6.1.0-13-amd64"},
                  {"system.osrelease/ID", "debian"},
                  {"memory.numa/node_count", "1"}},
                 0,
                 0,
                 false}),
    [](const ::testing::TestParamInfo<HostCase>& info) {
      std::string name = info.param.host;
      for (char& ch : name) {
        if (ch == '-') ch = '_';
      }
      return name;
    });

TEST(FixtureGpus, NvidiaDriverVersionOnTheNvidiaGpuOnly) {
  auto result = ProbeHost(FixtureOptions("nvidia-gpu"));
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->gpus.size(), 2u);
  EXPECT_EQ(result->gpus[0].vendor_name, "Intel");
  EXPECT_EQ(result->gpus[0].driver_version, "");
  EXPECT_EQ(result->gpus[1].vendor_name, "NVIDIA");
  EXPECT_EQ(result->gpus[1].address, "0000:01:00.0");
  EXPECT_EQ(result->gpus[1].driver_version, "535.104.05");
  const auto& pci = result->profile.nfd.instances.at("pci.device");
  std::map<std::string, std::string> nvidia = {{"vendor", "10de"},
                                               {"device", "2204"},
                                               {"class", "0300"},
                                               {"subsystem_vendor", "10de"},
                                               {"subsystem_device", "1454"}};
  EXPECT_THAT(pci, Contains(nvidia));
  // The GPUs are in the profile too, so specs can require a driver version.
  const auto& gpus = result->profile.nfd.instances.at("gpu.device");
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[1].at("vendor_name"), "NVIDIA");
  EXPECT_EQ(gpus[1].at("driver_version"), "535.104.05");
  EXPECT_EQ(gpus[0].count("driver_version"), 0u);
  EXPECT_EQ(result->profile.nfd.attributes.at("gpu.nvidia").at("driver_version"), "535.104.05");
}

TEST(FixtureGpus, AHostWithoutGpusHasNoGpuFeatures) {
  auto result = ProbeHost(FixtureOptions("arm64-server"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->profile.nfd.instances.count("gpu.device"), 0u);
  EXPECT_EQ(result->profile.nfd.attributes.count("gpu.nvidia"), 0u);
}

TEST(FixtureModules, LoadedAndBuiltin) {
  auto result = ProbeHost(FixtureOptions("arm64-server"));
  ASSERT_TRUE(result.ok()) << result.status();
  const auto& flags = result->profile.nfd.flags;
  EXPECT_EQ(flags.at("kernel.loadedmodule"), (std::set<std::string>{"mlx5_core", "nvme", "tls"}));
  EXPECT_EQ(flags.at("kernel.enabledmodule"),
            (std::set<std::string>{"ext4", "mlx5_core", "nvme", "tls", "virtio_blk"}));
}

TEST(FixtureBroken, CpuinfoGarbageIsAnErrorNamingTheFile) {
  auto result = ProbeHost(FixtureOptions("broken-cpuinfo"));
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("broken-cpuinfo/proc/cpuinfo"));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("line 3"));
}

TEST(FixtureMissing, RootWithoutCpuinfoIsAnError) {
  ProbeOptions options = FixtureOptions("does-not-exist");
  auto result = ProbeHost(options);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("does-not-exist/proc/cpuinfo"));
}

TEST(Declared, FeaturesCanonicalAndAttributesInLocalFeature) {
  ProbeOptions options = FixtureOptions("no-config");
  options.declared_features = {"AVX2", "pni", "x86-64-v3", "my-accelerator"};
  options.declared_attributes = {{"vendor.example/fpga", "true"}};
  auto result = ProbeHost(options);
  ASSERT_TRUE(result.ok()) << result.status();
  const HostProfile& p = result->profile;
  EXPECT_THAT(p.features, IsSupersetOf({"avx2", "sse3", "bmi2", "my-accelerator"}));
  // Declared features do not change the detected level.
  EXPECT_EQ(p.platform.variant, "v2");
  EXPECT_EQ(p.nfd.attributes.at("local.feature").at("vendor.example/fpga"), "true");
  EXPECT_THAT(result->warnings, Contains(HasSubstr("my-accelerator")));
}

}  // namespace
}  // namespace imgsel::probe
