#include "matcher/host_profile.h"

#include "absl/strings/str_cat.h"
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

// Every variant each architecture has is accepted (and kept, normalised).
TEST(ParseHostProfile, AcceptsEveryKnownVariant) {
  const std::pair<const char*, const char*> cases[] = {
      {"amd64", "v1"}, {"amd64", "v2"},   {"amd64", "v3"},         {"amd64", "V4"},
      {"arm64", "v8"}, {"arm64", "v8.0"}, {"arm64", "v8.1"},       {"arm64", "v8.9"},
      {"arm64", "9"},  {"arm64", "v9.0"}, {"arm64", "v9.7"},       {"arm", "v5"},
      {"arm", "7"},    {"arm", "v8"},     {"riscv64", "rva23u64"},
  };
  for (const auto& [arch, variant] : cases) {
    auto p = ParseHostProfile(absl::StrCat(R"({"platform":{"os":"linux","architecture":")", arch,
                                           R"(","variant":")", variant, R"("}})"),
                              "node.json");
    EXPECT_TRUE(p.ok()) << arch << "/" << variant << ": " << p.status();
  }
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
      // A misspelled key is an error that says what was meant.
      {R"({"platform":{"os":"linux","architecture":"amd64"},"featurez":["avx2"]})",
       "/featurez: unknown key \"featurez\"; did you mean \"features\"?"},
      {R"({"platform":{"os":"linux","architecture":"amd64","varient":"v3"}})",
       "/platform/varient: unknown key \"varient\" in platform; did you mean \"variant\"?"},
      {R"({"platform":{"os":"linux","architecture":"amd64"},"nfd":{"flag":{}}})",
       "/nfd/flag: unknown key \"flag\" in nfd; did you mean \"flags\"?"},
      // Variants are bounded per architecture.
      {R"({"platform":{"os":"linux","architecture":"amd64","variant":"v2147483647"}})",
       "/platform/variant: \"v2147483647\" is not an amd64 level (v1, v2, v3 or v4)"},
      {R"({"platform":{"os":"linux","architecture":"amd64","variant":"v5"}})",
       "is not an amd64 level"},
      {R"({"platform":{"os":"linux","architecture":"arm64","variant":"v8.10"}})",
       "/platform/variant: \"v8.10\" is not an arm64 version containerd knows"},
      {R"({"platform":{"os":"linux","architecture":"arm64","variant":"v10"}})",
       "is not an arm64 version"},
      {R"({"platform":{"os":"linux","architecture":"arm","variant":"v99"}})",
       "is not an arm version (v5, v6, v7 or v8)"},
      {R"({"platform":{"os":"linux","architecture":"riscv64","variant":"rva23 u64"}})",
       "is not a variant"},
      {R"({"platform":{"os":"linux\u001b[2J","architecture":"amd64"}})",
       "/platform/os: expected a platform name"},
      // An empty or malformed feature name is nobody's feature.
      {R"({"platform":{"os":"linux","architecture":"amd64"},"features":["avx2",""]})",
       "/features/1: not a feature name"},
      {R"({"platform":{"os":"linux","architecture":"amd64"},"features":["a\u0007b"]})",
       "/features/0: not a feature name"},
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
