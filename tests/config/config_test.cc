#include "config/config.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "config/restart_settings.h"
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
      {"version = 1\n[compat.groups]\nunknown_key = \"skip\"",
       "imgsel.toml:3:15: unknown_key: \"skip\" (want \"fail\" or \"ignore\")"},
      {"version = 1\n[compat.groups]\nrequire = [\"nfd\"]", "did you mean \"required\"?"},
      {"version = 1\n[compat.groups]\noptional_key_weight = 1000001", "optional_key_weight"},
      {"version = 1\n[compat.groups]\nnfd_groups = [\"\"]", "nfd_groups: a group name is empty"},
      {"version = = 1", "imgsel.toml:1:"},
      {"version = 1\nversion = 1", "imgsel.toml:2:"},
  };
  for (const auto& [toml, want] : cases) {
    auto c = ParseConfig(toml, "imgsel.toml");
    ASSERT_FALSE(c.ok()) << toml;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(want)) << toml;
  }
}

// [compat.groups]: the operator's line between requirements and optional
// keys of Proposal F groups; the default makes every key a requirement.
TEST(ParseConfig, CompatGroups) {
  const Config defaults = DefaultConfig();
  EXPECT_EQ(defaults.compat.groups.required, std::vector<std::string>{"*"});
  EXPECT_EQ(defaults.compat.groups.optional_key_weight, 1);
  EXPECT_FALSE(defaults.compat.groups.ignore_unknown_keys);
  EXPECT_TRUE(defaults.compat.groups.IsNfd("nfd"));
  auto c = ParseConfig(
      "version = 1\n[compat.groups]\nrequired = [\"nfd\", \"mpi\"]\noptional_key_weight = 5\n"
      "unknown_key = \"ignore\"\nnfd_groups = [\"k8s.nfd\"]\n",
      "imgsel.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  const GroupPolicy& g = c->compat.groups;
  EXPECT_TRUE(g.IsRequired("mpi"));
  EXPECT_FALSE(g.IsRequired("gpu"));
  EXPECT_EQ(g.optional_key_weight, 5);
  EXPECT_TRUE(g.ignore_unknown_keys);
  EXPECT_TRUE(g.IsNfd("k8s.nfd"));
  EXPECT_FALSE(g.IsNfd("nfd"));
}

// Weights are bounded, as a spec's are, so that no sum of them can overflow
// an entry's score (matcher/policy.h): each edge, in [[prefer]] and in a
// handler's rules.
TEST(ParseConfig, PreferWeightsStayWithinKMaxPreferenceWeight) {
  struct Case {
    std::string weight;
    bool accepted;
  };
  const Case cases[] = {
      {absl::StrCat(kMaxPreferenceWeight), true},
      {absl::StrCat(kMaxPreferenceWeight + 1), false},
      {absl::StrCat(-kMaxPreferenceWeight), true},
      {absl::StrCat(-kMaxPreferenceWeight - 1), false},
      {"9223372036854775807", false},
      {"-9223372036854775808", false},
  };
  for (const char* section : {"[[prefer]]", "[[handlers.kata.prefer]]"}) {
    for (const Case& c : cases) {
      const std::string toml =
          absl::StrCat("version = 1\n", section, "\nannotation = \"a\"\nweight = ", c.weight);
      auto config = ParseConfig(toml, "imgsel.toml");
      if (c.accepted) {
        ASSERT_TRUE(config.ok()) << toml << ": " << config.status();
        const Policy policy = config->PolicyFor("kata");
        ASSERT_EQ(policy.prefer.size(), 1u) << toml;
        EXPECT_EQ(absl::StrCat(policy.prefer[0].weight), c.weight) << toml;
      } else {
        ASSERT_FALSE(config.ok()) << toml;
        EXPECT_THAT(std::string(config.status().message()),
                    HasSubstr(absl::StrCat("imgsel.toml:4:10: weight: ", c.weight,
                                           " is out of range (-1000000..1000000)")))
            << toml;
      }
    }
  }
}

// Every bound of the file, at its edge and one past it: the edge is read,
// one past is an error naming the key (docs/RELIABILITY.md, "Bounds").
TEST(ParseConfig, EveryBoundHoldsAtItsEdge) {
  auto rules = [](const char* section, int n) {
    std::string out = "version = 1\n";
    for (int i = 0; i < n; ++i)
      absl::StrAppend(&out, section, "\nannotation = \"a", i, "\"\nweight = 1\n");
    return out;
  };
  auto key = [](const char* section, const char* line) {
    return absl::StrCat("version = 1\n[", section, "]\n", line, "\n");
  };
  auto padded = [](size_t size) {
    std::string out = "version = 1\n#";
    out.append(size - out.size() - 1, 'x');
    return out + "\n";
  };
  struct Case {
    const char* bound;
    std::string at_edge;
    std::string past_edge;
    const char* error;  // in the error past the edge
  };
  const Case cases[] = {
      {"file size", padded(1 << 20), padded((1 << 20) + 1), "larger than 1048576 bytes"},
      {"[[prefer]] rules", rules("[[prefer]]", 1024), rules("[[prefer]]", 1025),
       "prefer: more than 1024 rules"},
      {"a handler's rules", rules("[[handlers.kata.prefer]]", 1024),
       rules("[[handlers.kata.prefer]]", 1025), "more than 1024 rules"},
      {"socket path", key("server", ("socket = \"/" + std::string(106, 's') + "\"").c_str()),
       key("server", ("socket = \"/" + std::string(107, 's') + "\"").c_str()),
       "108 bytes, longer than a Unix socket path can be (107)"},
      {"select_timeout", key("server", "select_timeout = \"1m\""),
       key("server", "select_timeout = \"60.001s\""),
       "select_timeout: \"60.001s\" is out of range"},
      {"drain_timeout", key("server", "drain_timeout = \"10m\""),
       key("server", "drain_timeout = \"601s\""), "drain_timeout: \"601s\" is out of range"},
      {"connect_timeout", key("registry", "connect_timeout = \"5m\""),
       key("registry", "connect_timeout = \"301s\""), "connect_timeout: \"301s\" is out of range"},
      {"request_timeout", key("registry", "request_timeout = \"1h\""),
       key("registry", "request_timeout = \"3601s\""),
       "request_timeout: \"3601s\" is out of range"},
      {"max_concurrent_per_registry", key("registry", "max_concurrent_per_registry = 256"),
       key("registry", "max_concurrent_per_registry = 257"),
       "max_concurrent_per_registry: 257 is out of range (1..256)"},
      {"max_concurrent_per_registry, low", key("registry", "max_concurrent_per_registry = 1"),
       key("registry", "max_concurrent_per_registry = 0"),
       "max_concurrent_per_registry: 0 is out of range (1..256)"},
      {"hook_timeout", key("host", "hook_timeout = \"5m\""), key("host", "hook_timeout = \"301s\""),
       "hook_timeout: \"301s\" is out of range"},
      {"referrers_ttl", key("compat", "referrers_ttl = \"720h\""),
       key("compat", "referrers_ttl = \"721h\""), "referrers_ttl: \"721h\" is out of range"},
      {"cache_max_bytes", key("compat", "cache_max_bytes = 1099511627776"),
       key("compat", "cache_max_bytes = 1099511627777"),
       "cache_max_bytes: 1099511627777 is out of range (1048576..1099511627776)"},
      {"cache_max_bytes, low", key("compat", "cache_max_bytes = 1048576"),
       key("compat", "cache_max_bytes = 1048575"), "cache_max_bytes: 1048575 is out of range"},
      {"max_layer_bytes", key("compat", "max_layer_bytes = 67108864"),
       key("compat", "max_layer_bytes = 67108865"),
       "max_layer_bytes: 67108865 is out of range (1024..67108864)"},
  };
  for (const Case& c : cases) {
    auto edge = ParseConfig(c.at_edge, "imgsel.toml");
    EXPECT_TRUE(edge.ok()) << c.bound << ": " << edge.status();
    auto past = ParseConfig(c.past_edge, "imgsel.toml");
    ASSERT_FALSE(past.ok()) << c.bound;
    EXPECT_THAT(std::string(past.status().message()), HasSubstr(c.error)) << c.bound;
    EXPECT_THAT(std::string(past.status().message()), HasSubstr("imgsel.toml")) << c.bound;
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

namespace imgsel {
namespace {

TEST(ParseConfig, CompatRegistryAndServerSections) {
  auto c = ParseConfig(R"(version = 1
[compat]
enabled = true
base_images = false
cache_dir = "/var/cache/imgsel"
referrers_ttl = "30s"
on_error = "ignore"
max_layer_bytes = 2048
[registry]
config_path = "/etc/containerd/certs.d"
connect_timeout = "1s"
max_concurrent_per_registry = 4
[server]
socket = "/tmp/a.sock"
select_timeout = "250ms"
namespace = "test"
metrics = "127.0.0.1:9464"
)",
                       "imgsel.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->compat.cache_dir, "/var/cache/imgsel");
  EXPECT_EQ(c->compat.referrers_ttl, absl::Seconds(30));
  EXPECT_FALSE(c->compat.fallback_on_error);
  EXPECT_EQ(c->compat.max_layer_bytes, 2048);
  EXPECT_FALSE(c->compat.base_images);
  EXPECT_TRUE(DefaultConfig().compat.base_images);
  EXPECT_EQ(c->registry.config_path, "/etc/containerd/certs.d");
  EXPECT_EQ(c->registry.connect_timeout, absl::Seconds(1));
  EXPECT_EQ(c->registry.max_concurrent_per_registry, 4);
  EXPECT_EQ(c->server.socket, "/tmp/a.sock");
  EXPECT_EQ(c->server.select_timeout, absl::Milliseconds(250));
  EXPECT_EQ(c->server.ns, "test");
  EXPECT_EQ(c->server.metrics, "127.0.0.1:9464");
  // Defaults where silent.
  EXPECT_EQ(c->server.cri_socket, "/run/imgsel/cri.sock");
  EXPECT_EQ(c->server.containerd_socket, "/run/containerd/containerd.sock");
}

TEST(ParseConfig, SectionErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"version = 1\n[compat]\non_error = \"retry\"", "imgsel.toml:3:12: on_error: \"retry\""},
      {"version = 1\n[compat]\nenabled = \"yes\"", "enabled: expected true or false"},
      {"version = 1\n[compat]\nbase_images = 1", "base_images: expected true or false"},
      {"version = 1\n[compat]\nmax_layer_bytes = 1", "max_layer_bytes: 1 is out of range"},
      {"version = 1\n[registry]\nconect_timeout = \"1s\"", "did you mean \"connect_timeout\"?"},
      {"version = 1\n[server]\nselect_timeout = 2", "select_timeout: expected a string"},
      {"version = 1\n[server]\nsocket = 1", "socket: expected a string"},
      {"version = 1\n[server]\nmetrics = \"0.0.0.0:9464\"",
       "imgsel.toml:3:11: metrics address \"0.0.0.0:9464\": only loopback"},
      {"version = 1\n[server]\nmetrics = \"9464\"", "imgsel.toml:3:11: metrics address \"9464\""},
      {"version = 1\n[server]\nmetrics = \"[::1]:http\"", "bad port"},
      {"version = 1\n[server]\nmetrics_allow_remote = false\nmetrics = \"10.1.2.3:9464\"",
       "imgsel.toml:4:11: metrics address \"10.1.2.3:9464\": only loopback (127.0.0.1, ::1, "
       "localhost) is allowed; set [server] metrics_allow_remote = true"},
      {"version = 1\n[server]\nmetrics_allow_remote = \"yes\"",
       "imgsel.toml:3:24: metrics_allow_remote: expected true or false"},
      {"version = 1\n[server]\nmetrics_allow_remote = true\nmetrics = \"node-a:9464\"",
       "imgsel.toml:4:11: metrics address \"node-a:9464\": the host must be a numeric IP"},
      {"version = 1\n[server]\nmetrics = \"127.0.0.1:0\"",
       "imgsel.toml:3:11: metrics address "
       "\"127.0.0.1:0\": port 0"},
      // Every wait is bounded, and a negative one is not a typo for a duration.
      {"version = 1\n[server]\nselect_timeout = \"inf\"",
       "imgsel.toml:3:18: select_timeout: \"inf\" is out of range (1ms..1m)"},
      {"version = 1\n[server]\nselect_timeout = \"1000000h\"", "is out of range (1ms..1m)"},
      {"version = 1\n[server]\nselect_timeout = \"0s\"", "is out of range (1ms..1m)"},
      {"version = 1\n[server]\ndrain_timeout = \"inf\"", "drain_timeout: \"inf\" is out of range"},
      {"version = 1\n[server]\nnothing_fits = \"failover\"",
       "imgsel.toml:3:16: nothing_fits: \"failover\" is neither \"first-match\" nor \"fail\""},
      {"version = 1\n[server]\ndrain_timeout = \"-1s\"", "drain_timeout: \"-1s\" is out of range"},
      {"version = 1\n[registry]\nrequest_timeout = \"2h\"",
       "request_timeout: \"2h\" is out of range"},
      {"version = 1\n[compat]\nreferrers_ttl = \"inf\"", "referrers_ttl: \"inf\" is out of range"},
      {"version = 1\n[host]\nhook_timeout = \"0s\"", "hook_timeout: \"0s\" is out of range"},
      // Socket paths a start could not bind, caught when the file is read.
      {"version = 1\n[server]\nsocket = \"\"", "imgsel.toml:3:10: socket: \"\" is not an absolute"},
      {"version = 1\n[server]\ncri_socket = \"cri.sock\"", "cri_socket: \"cri.sock\" is not an"},
      {"version = 1\n[server]\nsocket = "
       "\"/tmp/"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaa.sock\"",
       "socket: 113 bytes, longer than a Unix socket path can be (107)"},
      {"version = 1\n[server]\nsocket = \"/run/x.sock\"\ncri_socket = \"/run/x.sock\"",
       "imgsel.toml:4:14: cri_socket: \"/run/x.sock\" is also socket"},
      {"version = 1\n[server]\ncri_socket = \"/run/containerd/containerd.sock\"",
       "imgsel.toml:3:14: containerd_socket: \"/run/containerd/containerd.sock\" is also "
       "cri_socket"},
      {"version = 1\n[server]\ncontainerd_socket = \"/run/imgsel/../imgsel/cri.sock\"",
       "containerd_socket: \"/run/imgsel/../imgsel/cri.sock\" is also cri_socket; each socket "
       "needs a path of its own"},
  };
  for (const auto& [toml, want] : cases) {
    auto c = ParseConfig(toml, "imgsel.toml");
    ASSERT_FALSE(c.ok()) << toml;
    EXPECT_THAT(std::string(c.status().message()), ::testing::HasSubstr(want)) << toml;
  }
}

TEST(ParseConfig, NothingFits) {
  auto def = ParseConfig("version = 1\n", "imgsel.toml");
  ASSERT_TRUE(def.ok());
  EXPECT_FALSE(def->server.fail_when_nothing_fits) << "containerd's behaviour by default";
  auto fail = ParseConfig("version = 1\n[server]\nnothing_fits = \"fail\"\n", "imgsel.toml");
  ASSERT_TRUE(fail.ok()) << fail.status();
  EXPECT_TRUE(fail->server.fail_when_nothing_fits);
  auto first =
      ParseConfig("version = 1\n[server]\nnothing_fits = \"first-match\"\n", "imgsel.toml");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->server.fail_when_nothing_fits);
}

// The content handover is on unless turned off; only a boolean turns it off.
TEST(ParseConfig, ContentHandover) {
  auto def = ParseConfig("version = 1\n", "imgsel.toml");
  ASSERT_TRUE(def.ok());
  EXPECT_TRUE(def->server.content_handover);
  auto off = ParseConfig("version = 1\n[server]\ncontent_handover = false\n", "imgsel.toml");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->server.content_handover);
  auto text = ParseConfig("version = 1\n[server]\ncontent_handover = \"off\"\n", "imgsel.toml");
  ASSERT_FALSE(text.ok());
  EXPECT_TRUE(absl::StrContains(text.status().message(),
                                "imgsel.toml:3:20: content_handover: expected true or false"))
      << text.status();
}

TEST(ParseConfig, MetricsOnLoopbackOnly) {
  for (const char* address : {"127.0.0.1:9464", "localhost:9464", "[::1]:9464", ""}) {
    auto c = ParseConfig(absl::StrCat("version = 1\n[server]\nmetrics = \"", address, "\"\n"),
                         "imgsel.toml");
    ASSERT_TRUE(c.ok()) << address << ": " << c.status();
    EXPECT_EQ(c->server.metrics, address);
  }
}

// metrics_allow_remote lets metrics be any numeric address, before or
// after it in the file.
TEST(ParseConfig, MetricsBeyondLoopbackOnlyWhenAllowed) {
  for (const char* toml : {
           "version = 1\n[server]\nmetrics_allow_remote = true\nmetrics = \"0.0.0.0:9464\"\n",
           "version = 1\n[server]\nmetrics = \"[::]:9464\"\nmetrics_allow_remote = true\n",
       }) {
    auto c = ParseConfig(toml, "imgsel.toml");
    ASSERT_TRUE(c.ok()) << toml << c.status();
    EXPECT_TRUE(c->server.metrics_allow_remote);
  }
  auto def = ParseConfig("version = 1\n", "imgsel.toml");
  ASSERT_TRUE(def.ok());
  EXPECT_FALSE(def->server.metrics_allow_remote) << "loopback only by default";
}

// Each setting a reload cannot apply is named when, and only when, it
// changed; the ones a reload applies are never named.
TEST(SettingsNeedingRestart, NamesWhatChangedAndOnlyThat) {
  const Config base = DefaultConfig();
  struct Case {
    const char* what;
    void (*change)(Config&);
    std::vector<std::string> want;
  };
  const Case cases[] = {
      {"nothing", [](Config&) {}, {}},
      {"select_timeout", [](Config& c) { c.server.select_timeout = absl::Seconds(9); }, {}},
      {"drain_timeout", [](Config& c) { c.server.drain_timeout = absl::Seconds(9); }, {}},
      {"compat enabled", [](Config& c) { c.compat.enabled = false; }, {}},
      {"base_images", [](Config& c) { c.compat.base_images = false; }, {}},
      {"on_error", [](Config& c) { c.compat.fallback_on_error = false; }, {}},
      {"a handler", [](Config& c) { c.handlers["gpu"].replace = true; }, {}},
      {"host features", [](Config& c) { c.host.features = {"avx2"}; }, {"[host] features"}},
      {"host attributes", [](Config& c) { c.host.attributes["a"] = "b"; }, {"[host] attributes"}},
      {"hooks_dir", [](Config& c) { c.host.hooks_dir = "/h"; }, {"[host] hooks_dir"}},
      {"hook_timeout",
       [](Config& c) { c.host.hook_timeout = absl::Seconds(9); },
       {"[host] hook_timeout"}},
      {"cache_dir", [](Config& c) { c.compat.cache_dir = "/c"; }, {"[compat] cache_dir"}},
      {"cache_max_bytes",
       [](Config& c) { c.compat.cache_max_bytes = 1; },
       {"[compat] cache_max_bytes"}},
      {"referrers_ttl",
       [](Config& c) { c.compat.referrers_ttl = absl::Seconds(1); },
       {"[compat] referrers_ttl"}},
      {"max_layer_bytes",
       [](Config& c) { c.compat.max_layer_bytes = 1; },
       {"[compat] max_layer_bytes"}},
      {"config_path", [](Config& c) { c.registry.config_path = "/p"; }, {"[registry] config_path"}},
      {"docker_config",
       [](Config& c) { c.registry.docker_config = "/d"; },
       {"[registry] docker_config"}},
      {"connect_timeout",
       [](Config& c) { c.registry.connect_timeout = absl::Seconds(1); },
       {"[registry] connect_timeout"}},
      {"request_timeout",
       [](Config& c) { c.registry.request_timeout = absl::Seconds(1); },
       {"[registry] request_timeout"}},
      {"max_concurrent",
       [](Config& c) { c.registry.max_concurrent_per_registry = 1; },
       {"[registry] max_concurrent_per_registry"}},
      {"socket", [](Config& c) { c.server.socket = "/s"; }, {"[server] socket"}},
      {"cri_socket", [](Config& c) { c.server.cri_socket = "/s"; }, {"[server] cri_socket"}},
      {"containerd_socket",
       [](Config& c) { c.server.containerd_socket = "/s"; },
       {"[server] containerd_socket"}},
      {"namespace", [](Config& c) { c.server.ns = "n"; }, {"[server] namespace"}},
      {"metrics", [](Config& c) { c.server.metrics = "127.0.0.1:1"; }, {"[server] metrics"}},
      {"metrics_allow_remote",
       [](Config& c) { c.server.metrics_allow_remote = true; },
       {"[server] metrics_allow_remote"}},
      {"two, in file order",
       [](Config& c) {
         c.server.socket = "/s";
         c.host.features = {"avx2"};
       },
       {"[host] features", "[server] socket"}},
  };
  for (const Case& c : cases) {
    Config next = base;
    c.change(next);
    EXPECT_EQ(SettingsNeedingRestart(base, next), c.want) << c.what;
  }
}

}  // namespace
}  // namespace imgsel
