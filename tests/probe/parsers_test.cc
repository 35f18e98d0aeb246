// The probe's parsers: each file format the kernel or the distribution writes.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "matcher/features.h"
#include "probe/arm.h"
#include "probe/cpuid_x86.h"
#include "probe/cpuinfo.h"
#include "probe/gpus.h"
#include "probe/kernel.h"
#include "probe/os_release.h"

namespace imgsel::probe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(Cpuinfo, X86FirstProcessorFlagsAndIdentity) {
  auto info = ParseCpuinfo(
      "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
      "model name\t: AMD EPYC 7B13\nphysical id\t: 0\nsiblings\t: 2\ncpu cores\t: 1\n"
      "flags\t\t: fpu pni abm\n\nprocessor\t: 1\nphysical id\t: 1\nflags\t\t: fpu\n");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->vendor_id, "AuthenticAMD");
  EXPECT_EQ(info->family, 25);
  EXPECT_EQ(info->model, 1);
  EXPECT_EQ(info->model_name, "AMD EPYC 7B13");
  EXPECT_EQ(info->processors, 2);
  EXPECT_EQ(info->physical_ids.size(), 2u);
  EXPECT_TRUE(info->smt);
  EXPECT_THAT(info->flags, ElementsAre("abm", "fpu", "pni"));
}

TEST(Cpuinfo, Arm64) {
  auto info = ParseCpuinfo(
      "processor\t: 0\nFeatures\t: fp asimd atomics\nCPU implementer\t: 0x41\n"
      "CPU architecture: 8\nCPU part\t: 0xd0c\n");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(info->is_arm());
  EXPECT_EQ(info->cpu_implementer, 0x41);
  EXPECT_EQ(info->cpu_part, 0xd0c);
  EXPECT_THAT(info->flags, ElementsAre("asimd", "atomics", "fp"));
}

TEST(Cpuinfo, RejectsWhatIsNotCpuinfo) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"", "no \"processor\""},
      {"hello world\n", "line 1"},
      {"processor : 0\nflags : a\x01b\n", "line 2"},
      {"processor : 0\nflags : fpu\n", "neither"},
  };
  for (const Case& c : cases) {
    auto info = ParseCpuinfo(c.text);
    ASSERT_FALSE(info.ok()) << c.text;
    EXPECT_THAT(std::string(info.status().message()), HasSubstr(c.error)) << c.text;
  }
}

TEST(OsRelease, QuotingAndVersionParts) {
  auto keys = ParseOsRelease(
      "# comment\nNAME=\"Red Hat Enterprise Linux\"\nID=rhel\nVERSION_ID='9.3'\n"
      "X=\"a \\\"q\\\" \\$b\"\n\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_THAT(*keys, ElementsAre(Pair("ID", "rhel"), Pair("NAME", "Red Hat Enterprise Linux"),
                                 Pair("VERSION_ID", "9.3"), Pair("VERSION_ID.major", "9"),
                                 Pair("VERSION_ID.minor", "3"), Pair("X", "a \"q\" $b")));
}

TEST(OsRelease, VersionWithoutMinor) {
  auto keys = ParseOsRelease("VERSION_ID=12\n");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->count("VERSION_ID.minor"), 0u);
  EXPECT_EQ(keys->at("VERSION_ID.major"), "12");
}

TEST(OsRelease, Malformed) {
  for (const char* text : {"just words\n", "A=\"unterminated\n", "A=two words\n"}) {
    EXPECT_FALSE(ParseOsRelease(text).ok()) << text;
  }
}

TEST(Kernel, VersionAttributes) {
  struct Case {
    const char* release;
    std::map<std::string, std::string> want;
  } cases[] = {
      {"5.15.0-91-generic",
       {{"full", "5.15.0-91-generic"}, {"major", "5"}, {"minor", "15"}, {"revision", "0"}}},
      {"6.18.44-fc-v669",
       {{"full", "6.18.44-fc-v669"}, {"major", "6"}, {"minor", "18"}, {"revision", "44"}}},
      {"6.1-rc1", {{"full", "6.1-rc1"}, {"major", "6"}, {"minor", "1"}}},
      {"", {}},
  };
  for (const Case& c : cases) EXPECT_EQ(KernelVersionAttributes(c.release), c.want) << c.release;
}

TEST(Kernel, Modules) {
  EXPECT_THAT(ParseProcModules("nvme 49152 2 - Live 0x0\ntls 1 0 - Live 0x0\n"),
              ElementsAre("nvme", "tls"));
  EXPECT_THAT(ParseModulesBuiltin("kernel/fs/ext4/ext4.ko\nkernel/lib/crc32c.ko\n"),
              ElementsAre("crc32c", "ext4"));
}

TEST(Kernel, Config) {
  auto config = ParseKernelConfig(
      "#\n# CONFIG_KASAN is not set\nCONFIG_NUMA=y\nCONFIG_DRM=m\nCONFIG_LOCALVERSION=\"-x\"\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(*config,
              ElementsAre(Pair("DRM", "m"), Pair("LOCALVERSION", "-x"), Pair("NUMA", "y")));
  EXPECT_FALSE(ParseKernelConfig("NUMA=y\n").ok());
}

TEST(Kernel, GunzipRejectsGarbageAndBounds) {
  auto bad = Gunzip("not gzip at all", 1 << 20);
  EXPECT_FALSE(bad.ok());
  if (absl::IsUnimplemented(bad.status())) GTEST_SKIP() << "built without zlib";
  // "hello\n" gzipped.
  const std::string gz(
      "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xcb\x48\xcd\xc9\xc9\xe7\x02\x00"
      "\x20\x30\x3a\x36\x06\x00\x00\x00",
      26);
  auto ok = Gunzip(gz, 1 << 20);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, "hello\n");
  EXPECT_TRUE(absl::IsOutOfRange(Gunzip(gz, 3).status()));
  EXPECT_FALSE(Gunzip(gz.substr(0, 12), 1 << 20).ok());  // truncated
}

TEST(X86Level, FromPsabiLists) {
  for (int level = 1; level <= 4; ++level) {
    std::vector<std::string> names = X86LevelFeatures(level);
    std::set<std::string> features(names.begin(), names.end());
    EXPECT_EQ(X86Level(features), level);
    // Without one feature of the level, the host is one level lower.
    features.erase(names.back());
    EXPECT_EQ(X86Level(features), level - 1) << "without " << names.back();
  }
}

TEST(Arm, Arm64Variants) {
  struct Case {
    std::set<std::string> features;
    const char* want;
  } cases[] = {
      {{"fp", "asimd"}, ""},
      {{"atomics", "asimdrdm", "crc32"}, "v8.1"},
      {{"atomics", "asimdrdm", "crc32", "dcpop"}, "v8.2"},
      {{"atomics", "asimdrdm", "crc32", "dcpop", "jscvt", "fcma", "lrcpc"}, "v8.3"},
      {{"atomics", "asimdrdm", "crc32", "dcpop", "jscvt", "fcma", "lrcpc", "dit", "uscat", "ilrcpc",
        "flagm", "sb", "flagm2", "frint", "sve2"},
       "v9"},
      {{"atomics", "asimdrdm", "crc32", "dcpop", "jscvt", "fcma", "lrcpc", "dit", "uscat", "ilrcpc",
        "flagm", "sb", "flagm2", "frint", "i8mm", "bf16", "sve2"},
       "v9.1"},
      // v8.4 features without v8.3's: still v8.2.
      {{"atomics", "asimdrdm", "crc32", "dcpop", "dit", "uscat", "ilrcpc", "flagm"}, "v8.2"},
  };
  for (const Case& c : cases) EXPECT_EQ(Arm64Variant(c.features), c.want);
}

TEST(Arm, HwcapBitsUseTableNames) {
  // HWCAP_FP (bit 0), HWCAP_ATOMICS (8), HWCAP_ASIMDDP (20); HWCAP2_SVE2 (1).
  EXPECT_THAT(Arm64HwcapFeatures((1ul << 0) | (1ul << 8) | (1ul << 20), 1ul << 1),
              ElementsAre("asimddp", "atomics", "fp", "sve2"));
  for (const std::string& f : Arm64HwcapFeatures(~0ul, ~0ul)) {
    EXPECT_TRUE(CanonicalFeature(f).has_value()) << f << " is missing from matcher/features.cc";
  }
}

TEST(Arm, ArmVariants) {
  EXPECT_EQ(ArmVariant("7"), "v7");
  EXPECT_EQ(ArmVariant("5TEJ"), "v5");
  EXPECT_EQ(ArmVariant("6TEJ"), "v6");
  EXPECT_EQ(ArmVariant("8"), "v8");
  EXPECT_EQ(ArmVariant("?"), "");
}

TEST(Gpus, NvidiaDriverVersion) {
  EXPECT_EQ(ParseNvidiaDriverVersion(
                "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 2023\n"),
            "535.104.05");
  EXPECT_EQ(ParseNvidiaDriverVersion("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  "
                                     "550.54.14  Release Build\n"),
            "550.54.14");
  EXPECT_EQ(ParseNvidiaDriverVersion("garbage"), std::nullopt);
}

TEST(NfdNames, EveryCpuidNameReadsBack) {
  for (absl::string_view f : KnownCanonicalFeatures()) {
    std::string nfd = NfdCpuidName(f);
    EXPECT_EQ(CanonicalFeature(nfd), std::string(f)) << nfd;
  }
  EXPECT_EQ(NfdCpuidName("sse4_1"), "SSE4");
  EXPECT_EQ(NfdCpuidName("avx2"), "AVX2");
}

}  // namespace
}  // namespace imgsel::probe
