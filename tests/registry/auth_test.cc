#include "registry/auth.h"

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace imgsel::registry {
namespace {

TEST(WwwAuthenticateTest, ParsesChallenges) {
  struct Case {
    std::string header;
    std::string scheme;
    std::map<std::string, std::string> params;
  };
  const Case cases[] = {
      {R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull")",
       "bearer",
       {{"realm", "https://auth.docker.io/token"},
        {"service", "registry.docker.io"},
        {"scope", "repository:library/nginx:pull"}}},
      {R"(Basic realm="Registry Realm")", "basic", {{"realm", "Registry Realm"}}},
      {R"(bearer Realm="x", Service=y)", "bearer", {{"realm", "x"}, {"service", "y"}}},
      {R"(Bearer realm="a\"b",scope="repository:a:pull,push")",
       "bearer",
       {{"realm", "a\"b"}, {"scope", "repository:a:pull,push"}}},
      {"Bearer", "bearer", {}},
  };
  for (const Case& c : cases) {
    auto ch = ParseWwwAuthenticate(c.header);
    ASSERT_EQ(ch.size(), 1u) << c.header;
    EXPECT_EQ(ch[0].scheme, c.scheme);
    EXPECT_EQ(ch[0].params, c.params) << c.header;
  }
}

TEST(WwwAuthenticateTest, SeveralChallengesAndGarbage) {
  auto ch = ParseWwwAuthenticate(R"(Bearer realm="r",service="s", Basic realm="b")");
  ASSERT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch[0].scheme, "bearer");
  EXPECT_EQ(ch[0].params.at("service"), "s");
  EXPECT_EQ(ch[1].scheme, "basic");
  EXPECT_EQ(ch[1].params.at("realm"), "b");
  // Unterminated quotes and stray separators never crash.
  EXPECT_LE(ParseWwwAuthenticate(R"(Bearer realm="unterminated)").size(), 1u);
  EXPECT_TRUE(ParseWwwAuthenticate(",,, ").empty());
}

TEST(DockerConfigTest, AuthSourcesAndHostKeys) {
  std::string b64 = absl::Base64Escape("alice:s3cret");
  std::string json = R"({"auths": {
      "https://index.docker.io/v1/": {"auth": ")" +
                     b64 + R"("},
      "localhost:5000": {"username": "bob", "password": "pw"},
      "https://ghcr.io": {"auth": ")" +
                     absl::Base64Escape("tok:") + R"(", "identitytoken": "refresh-1"},
      "quay.io": {}
  }, "credsStore": "desktop"})";
  auto config = DockerConfig::Parse(json, "config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  Credentials hub = config->For("docker.io");
  EXPECT_EQ(hub.username, "alice");
  EXPECT_EQ(hub.password, "s3cret");
  EXPECT_EQ(config->For("registry-1.docker.io").username, "alice");
  Credentials local = config->For("localhost:5000");
  EXPECT_EQ(local.username, "bob");
  EXPECT_EQ(local.password, "pw");
  EXPECT_EQ(config->For("ghcr.io").identity_token, "refresh-1");
  EXPECT_TRUE(config->For("quay.io").empty());
  EXPECT_TRUE(config->For("example.com").empty());
}

TEST(DockerConfigTest, ErrorsNeverCarrySecrets) {
  auto bad = DockerConfig::Parse(R"({"auths": {"h.io": {"auth": "!!not-base64-secretvalue"}}})",
                                 "config.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("h.io"), std::string::npos);
  EXPECT_EQ(std::string(bad.status().message()).find("secretvalue"), std::string::npos);
  EXPECT_FALSE(DockerConfig::Parse("{not json", "config.json").ok());
  auto missing = DockerConfig::Load("/nonexistent/imgsel/config.json");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

// A secret with a control character would be written into a header line
// (a registry token is sent as it is): the entry is refused, naming the
// field and never the value.
TEST(DockerConfigTest, ControlCharactersInSecretsAreRefused) {
  struct Case {
    std::string entry;  // the JSON object under auths."h.io"
    std::string field;
  };
  const std::string b64 = absl::Base64Escape("alice:s3cret\r\nX-Injected: 1");
  const std::vector<Case> cases = {
      {R"({"username": "al\u0007ice", "password": "s3cret"})", "username"},
      {R"({"username": "alice", "password": "s3cret\r\nX-Injected: 1"})", "password"},
      {R"({"auth": ")" + b64 + R"("})", "password"},
      {R"({"identitytoken": "s3cret\u001b[31m"})", "identitytoken"},
      {R"({"registrytoken": "s3cret\nX-Injected: 1"})", "registrytoken"},
      {R"({"registrytoken": "s3cret\u007f"})", "registrytoken"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.entry);
    auto config =
        DockerConfig::Parse(absl::StrCat(R"({"auths": {"h.io": )", c.entry, "}}"), "config.json");
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(
        absl::StrContains(config.status().message(),
                          absl::StrCat("auths.h.io: ", c.field, ": holds a control character")))
        << config.status();
    EXPECT_FALSE(absl::StrContains(config.status().message(), "s3cret")) << config.status();
  }
  auto fine = DockerConfig::Parse(R"({"auths": {"h.io": {"username": "a", "password": "p w!"}}})",
                                  "config.json");
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ(fine->For("h.io").password, "p w!");
}

// A Docker config.json that never ends (given, or found through
// DOCKER_CONFIG) is refused at the bound, naming the file.
TEST(DockerConfigTest, ReadWithinABound) {
  auto given = DockerConfig::Load("/dev/zero");
  ASSERT_FALSE(given.ok());
  EXPECT_TRUE(absl::StrContains(given.status().message(), "Docker config: /dev/zero: larger than"))
      << given.status();
  char tmpl[] = "/tmp/imgsel-docker-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::filesystem::create_symlink("/dev/zero", dir + "/config.json");
  const char* saved = getenv("DOCKER_CONFIG");
  const std::string before = saved ? saved : "";
  setenv("DOCKER_CONFIG", dir.c_str(), 1);
  auto found = DockerConfig::Load("");
  if (saved) {
    setenv("DOCKER_CONFIG", before.c_str(), 1);
  } else {
    unsetenv("DOCKER_CONFIG");
  }
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(found.ok());
  EXPECT_TRUE(absl::StrContains(found.status().message(), "config.json: larger than"))
      << found.status();
}

TEST(CredentialsTest, CriAuthAndFingerprint) {
  auto c = CredentialsFromCri("", "", absl::Base64Escape("u:p:with:colons"), "", "");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->username, "u");
  EXPECT_EQ(c->password, "p:with:colons");
  EXPECT_FALSE(CredentialsFromCri("", "", "%%%", "", "").ok());
  Credentials other = *c;
  other.password = "q";
  EXPECT_NE(c->Fingerprint(), other.Fingerprint());
  EXPECT_EQ(c->Fingerprint().find("p:with"), std::string::npos);
  EXPECT_EQ(Credentials().Fingerprint(), "anonymous");
}

TEST(CredentialsTest, ControlCharactersAreRefusedByFieldName) {
  struct Case {
    std::string value;
    bool ok;
  };
  const Case cases[] = {
      {"", true},
      {"plain-Token_1.2~", true},
      {"with space and \"quotes\"", true},
      {"ünïcödé", true},
      {"\x80\xff", true},  // not text, but no control character
      {"a\rb", false},
      {"a\nb", false},
      {"tok\r\nX-Injected: yes", false},
      {"a\tb", false},
      {std::string("a\0b", 3), false},
      {"\x1f", false},
      {"a\x7f", false},
  };
  for (const Case& c : cases) {
    absl::Status s = CheckCredentialField("auth.password", c.value);
    EXPECT_EQ(s.ok(), c.ok) << absl::CEscape(c.value);
    if (s.ok()) continue;
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(s.message(), "auth.password: ")) << s;
    EXPECT_FALSE(absl::StrContains(s.message(), c.value)) << s;
  }
  // CredentialsFromCri checks every field, and what `auth` decodes to.
  EXPECT_FALSE(CredentialsFromCri("u\n", "", "", "", "").ok());
  EXPECT_FALSE(CredentialsFromCri("", "p\r", "", "", "").ok());
  EXPECT_FALSE(CredentialsFromCri("", "", "", "i\n", "").ok());
  EXPECT_FALSE(CredentialsFromCri("", "", "", "", "r\n").ok());
  auto decoded = CredentialsFromCri("", "", absl::Base64Escape("u:p\r\nX: y"), "", "");
  ASSERT_FALSE(decoded.ok());
  EXPECT_TRUE(absl::StartsWith(decoded.status().message(), "auth.auth (decoded): "))
      << decoded.status();
}

TEST(NormalizeAuthKeyTest, Table) {
  EXPECT_EQ(NormalizeAuthKey("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(NormalizeAuthKey("HTTP://Host.Example:5000/path"), "host.example:5000");
  EXPECT_EQ(NormalizeAuthKey("registry-1.docker.io"), "docker.io");
}

// A token is used until 5 s before its lifetime ends, never once the
// clock has gone back past the time it was issued.
TEST(TokenCacheTest, UsedWithinItsLifetimeLessTheMargin) {
  const absl::Time issued = absl::FromUnixSeconds(1000);
  const struct {
    absl::Duration at;  // from `issued`
    bool used;
  } cases[] = {
      {absl::ZeroDuration(), true},    {absl::Seconds(54), true},
      {absl::Seconds(55), false},      {absl::Seconds(56), false},  // within the 5 s margin
      {absl::Hours(1), false},         {-absl::Seconds(1), false},  // the clock went back
      {-absl::Hours(24 * 365), false},
  };
  TokenCache cache;
  cache.Put("k", "tok", issued, absl::Seconds(60));
  for (const auto& c : cases) {
    EXPECT_EQ(cache.Get("k", issued + c.at), c.used ? "tok" : "") << c.at;
  }
  EXPECT_EQ(cache.Get("other", issued), "");
  // A lifetime within the margin is never used.
  cache.Put("short", "tok", issued, absl::Seconds(3));
  EXPECT_EQ(cache.Get("short", issued), "");
}

// The cache holds at most kMaxTokens: expired ones go first, and a fresh
// token is always kept.
TEST(TokenCacheTest, HoldsABoundedNumber) {
  TokenCache cache;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (size_t i = 0; i < TokenCache::kMaxTokens; ++i) {
    cache.Put(absl::StrCat("old", i), "tok", t0, absl::Seconds(60));
  }
  const absl::Time later = t0 + absl::Minutes(5);  // every old token expired
  cache.Put("new", "fresh", later, absl::Seconds(60));
  EXPECT_EQ(cache.Get("new", later), "fresh");
  for (size_t i = 0; i < TokenCache::kMaxTokens; ++i) {
    cache.Put(absl::StrCat("more", i), "tok", later, absl::Seconds(60));
  }
  // Full of fresh tokens: it starts over rather than grow, and keeps the
  // one just put.
  cache.Put("last", "kept", later, absl::Seconds(60));
  EXPECT_EQ(cache.Get("last", later), "kept");
}

}  // namespace
}  // namespace imgsel::registry
