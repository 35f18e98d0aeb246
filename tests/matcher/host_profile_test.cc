#include "matcher/host_profile.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imgsel {
namespace {

using ::testing::HasSubstr;

TEST(ParseHostProfile, MinimalFormFromTheIssue) {
  auto p = ParseHostProfile(
      R"({"platform":{"os":"linux","architecture":"amd64","variant":"v3"},"features":["avx2"]})",
      "min.json");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(FormatPlatform(p->platform), "linux/amd64/v3");
  EXPECT_EQ(p->features, (std::set<std::string, std::less<>>{"avx2"}));
  EXPECT_TRUE(p->nfd.empty());
}

TEST(ParseHostProfile, NormalisesPlatformAndFeatures) {
  auto p = ParseHostProfile(
      R"({"platform":{"os":"Linux","architecture":"aarch64","variant":"8"},"features":["NEON","dotprod","Custom-Thing"]})",
      "p");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(FormatPlatform(p->platform), "linux/arm64");
  EXPECT_EQ(p->features, (std::set<std::string, std::less<>>{"asimd", "asimddp", "custom-thing"}));
}

TEST(ParseHostProfile, RoundTripsThroughJson) {
  HostProfile h;
  h.platform.os = "windows";
  h.platform.architecture = "amd64";
  h.platform.os_version = "10.0.17763.1";
  h.platform.os_features = {"win32k"};
  h.features = {"avx2", "sse4_2"};
  h.nfd.flags["cpu.cpuid"] = {"AVX2", "SSE42"};
  h.nfd.attributes["kernel.version"] = {{"major", "6"}, {"full", "6.1.0-\"x\""}};
  h.nfd.instances["pci.device"] = {{{"vendor", "10de"}, {"class", "0300"}}, {{"vendor", "8086"}}};
  auto back = ParseHostProfile(HostProfileToJson(h), "roundtrip");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->platform, h.platform);
  EXPECT_EQ(back->features, h.features);
  EXPECT_EQ(back->nfd.flags, h.nfd.flags);
  EXPECT_EQ(back->nfd.attributes, h.nfd.attributes);
  EXPECT_EQ(back->nfd.instances, h.nfd.instances);
}

TEST(ParseHostProfile, ErrorsNameTheSourceAndPointer) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "not valid JSON"},
      {"[]", "expected an object"},
      {"{}", "/platform: missing"},
      {R"({"platform":{"architecture":"amd64"}})", "/platform/os: missing"},
      {R"({"platform":{"os":"linux","architecture":7}})",
       "/platform/architecture: expected a string"},
      {R"({"platform":{"os":"linux","architecture":""}})",
       "/platform/architecture: must not be empty"},
      {R"({"platform":{"os":"linux","architecture":"amd64"},"features":"avx2"})",
       "/features: expected an array"},
      {R"({"platform":{"os":"linux","architecture":"amd64"},"features":[1]})",
       "/features/0: expected a string"},
      {R"({"platform":{"os":"linux","architecture":"amd64"},"nfd":{"flags":{"cpu.cpuid":{}}}})",
       "/nfd/flags/cpu.cpuid: expected an \"elements\" member"},
      {R"({"platform":{"os":"linux","architecture":"amd64"},"nfd":{"attributes":{"k":{"elements":{"a":1}}}}})",
       "/nfd/attributes/k/elements/a: expected a string"},
      {R"({"platform":{"os":"linux","architecture":"amd64"},"nfd":{"instances":{"pci.device":{"elements":[{}]}}}})",
       "/nfd/instances/pci.device/elements/0"},
  };
  for (const auto& [json, want] : cases) {
    auto p = ParseHostProfile(json, "node.json");
    ASSERT_FALSE(p.ok()) << json;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("node.json: ")) << json;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr(want)) << json;
  }
}

}  // namespace
}  // namespace imgsel
