#include "config/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imgsel {
namespace {

using ::testing::HasSubstr;

TEST(ParseConfig, FullExample) {
  auto c = ParseConfig(R"(version = 1
[features]
unknown = "ignore"
[host]
features = ["avx2", "x86-64-v2"]
attributes = { "vendor.example/fpga" = "true" }
hooks_dir = "/etc/imgsel/hooks.d"
hook_timeout = "500ms"

[[prefer]]
annotation = "com.example.gpu"
value = "nvidia"
weight = 10

[[prefer]]
annotation = "tier"
value_regex = "^gold"
weight = -3

[handlers.nvidia]
mode = "replace"
[[handlers.nvidia.prefer]]
annotation = "com.example.gpu"
weight = 100

[handlers.kata]
[[handlers.kata.prefer]]
annotation = "kata"
weight = 1
)",
                       "imgsel.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->policy.unknown_features, UnknownFeatures::kIgnore);
  EXPECT_EQ(c->host.features, (std::vector<std::string>{"avx2", "x86-64-v2"}));
  EXPECT_EQ(c->host.attributes.at("vendor.example/fpga"), "true");
  EXPECT_EQ(c->host.hook_timeout, absl::Milliseconds(500));
  ASSERT_EQ(c->policy.prefer.size(), 2u);
  EXPECT_EQ(c->policy.prefer[0].origin, "imgsel.toml:10:1");
  EXPECT_EQ(*c->policy.prefer[0].value, "nvidia");
  EXPECT_EQ(c->policy.prefer[1].value_regex->pattern(), "^gold");
  EXPECT_EQ(c->policy.prefer[1].weight, -3);

  // Handlers: replace drops the global rules, add (the default) appends.
  Policy nvidia = c->PolicyFor("nvidia");
  ASSERT_EQ(nvidia.prefer.size(), 1u);
  EXPECT_EQ(nvidia.prefer[0].weight, 100);
  EXPECT_EQ(nvidia.unknown_features, UnknownFeatures::kIgnore);
  EXPECT_EQ(c->PolicyFor("kata").prefer.size(), 3u);
  EXPECT_EQ(c->PolicyFor("").prefer.size(), 2u);
  EXPECT_EQ(c->PolicyFor("runc").prefer.size(), 2u);
}

TEST(ParseConfig, ErrorsSayFileLineColumnAndWhat) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "imgsel.toml: missing \"version = 1\""},
      {"version = 2", "imgsel.toml:1:11: version: only version = 1"},
      {"version = 1\nprefer = 3", "imgsel.toml:2:10: prefer: expected an array of tables"},
      {"version = 1\n[[prefer]]\nannotaton = \"x\"\nweight = 1",
       "imgsel.toml:3:1: unknown key \"annotaton\" in [[prefer]]; did you mean \"annotation\"?"},
      {"version = 1\n[hots]\n", "imgsel.toml:2:2: unknown key \"hots\"; did you mean \"host\"?"},
      {"version = 1\n[[prefer]]\nweight = 1",
       "imgsel.toml:2:1: [[prefer]]: missing \"annotation\""},
      {"version = 1\n[[prefer]]\nannotation = \"a\"", "[[prefer]]: missing \"weight\""},
      {"version = 1\n[[prefer]]\nannotation = \"a\"\nweight = \"high\"",
       "imgsel.toml:4:10: weight: expected an integer"},
      {"version = 1\n[[prefer]]\nannotation = \"a\"\nweight = 1\nvalue_regex = \"(\"",
       "imgsel.toml:5:15: value_regex: missing )"},
      {"version = 1\n[[prefer]]\nannotation = \"a\"\nweight = 1\nvalue = \"x\"\nvalue_regex = "
       "\"x\"",
       "either \"value\" or \"value_regex\""},
      {"version = 1\n[features]\nunknown = \"maybe\"", "imgsel.toml:3:11: unknown: \"maybe\""},
      {"version = 1\n[host]\nhook_timeout = \"soon\"", "hook_timeout: \"soon\" is not a duration"},
      {"version = 1\n[host]\nfeatures = [1]", "features[]: expected a string"},
      {"version = 1\n[handlers.x]\nmode = \"merge\"", "mode: \"merge\""},
      {"version = 1\n[handlers.x]\nmodes = \"add\"", "did you mean \"mode\"?"},
      {"version = = 1", "imgsel.toml:1:"},
      {"version = 1\nversion = 1", "imgsel.toml:2:"},
  };
  for (const auto& [toml, want] : cases) {
    auto c = ParseConfig(toml, "imgsel.toml");
    ASSERT_FALSE(c.ok()) << toml;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(want)) << toml;
  }
}

TEST(LoadConfig, MissingFileNamesThePath) {
  auto c = LoadConfig("/nonexistent/imgsel.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/nonexistent/imgsel.toml"));
}

TEST(DefaultConfig, RejectsUnknownFeaturesAndHasNoRules) {
  Config c = DefaultConfig();
  EXPECT_EQ(c.policy.unknown_features, UnknownFeatures::kReject);
  EXPECT_TRUE(c.policy.prefer.empty());
}

}  // namespace
}  // namespace imgsel
