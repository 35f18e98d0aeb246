#include "registry/hosts.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "registry/http.h"

namespace imgsel::registry {
namespace {

TEST(HostsTomlTest, MirrorsInFileOrderThenServer) {
  // Keys deliberately out of alphabetical order: file order must win.
  const char* toml = R"(
server = "https://registry-1.docker.io"

[host."https://zz-mirror.example.com"]
  capabilities = ["pull"]

[host."http://10.0.0.5:5000"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
  ca = "mirror.crt"
  [host."http://10.0.0.5:5000".header]
    x-custom = "v"

[host."https://aa.example.com/prefix"]
  override_path = true
)";
  auto eps = ParseHostsToml(toml, "hosts.toml", "/etc/certs.d/docker.io", "docker.io", false);
  ASSERT_TRUE(eps.ok()) << eps.status();
  ASSERT_EQ(eps->size(), 4u);
  EXPECT_EQ((*eps)[0].api_root, "https://zz-mirror.example.com/v2");
  EXPECT_TRUE((*eps)[0].Can(kCapPull));
  EXPECT_FALSE((*eps)[0].Can(kCapResolve));
  EXPECT_EQ((*eps)[0].ns, "docker.io");
  EXPECT_EQ((*eps)[1].api_root, "http://10.0.0.5:5000/v2");
  EXPECT_TRUE((*eps)[1].tls.skip_verify);
  ASSERT_EQ((*eps)[1].tls.ca_files.size(), 1u);
  EXPECT_EQ((*eps)[1].tls.ca_files[0], "/etc/certs.d/docker.io/mirror.crt");
  ASSERT_EQ((*eps)[1].headers.size(), 1u);
  EXPECT_EQ((*eps)[1].headers[0], "x-custom: v");
  EXPECT_EQ((*eps)[2].api_root, "https://aa.example.com/prefix");
  EXPECT_TRUE((*eps)[2].Can(kCapPush));  // default: all capabilities
  EXPECT_EQ((*eps)[3].api_root, "https://registry-1.docker.io/v2");
  EXPECT_EQ((*eps)[3].ns, "");  // the registry itself
}

// The layout many nodes use for a plain-HTTP registry: a [host] table for the
// server itself. It is one host, asked once (a 404 is not asked again), with
// the table's settings and what either listing allows.
TEST(HostsTomlTest, AServerListedAsItsOwnHostIsOneEndpoint) {
  const char* toml = R"(
server = "http://127.0.0.1:5000"
[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
  [host."http://127.0.0.1:5000".header]
    x-from = "host-table"
)";
  auto eps = ParseHostsToml(toml, "hosts.toml", "/d", "127.0.0.1:5000", true);
  ASSERT_TRUE(eps.ok()) << eps.status();
  ASSERT_EQ(eps->size(), 1u);
  EXPECT_EQ((*eps)[0].api_root, "http://127.0.0.1:5000/v2");
  EXPECT_TRUE((*eps)[0].Can(kCapResolve));
  EXPECT_TRUE((*eps)[0].Can(kCapPush));  // the server's own default
  ASSERT_EQ((*eps)[0].headers.size(), 1u);
  EXPECT_EQ((*eps)[0].headers[0], "x-from: host-table");
}

TEST(HostsTomlTest, DefaultServerAndDockerIo) {
  auto eps = ParseHostsToml("", "hosts.toml", "/d", "localhost:5000", true);
  ASSERT_TRUE(eps.ok());
  ASSERT_EQ(eps->size(), 1u);
  EXPECT_EQ((*eps)[0].api_root, "http://localhost:5000/v2");
  auto hub =
      ParseHostsToml(R"(server = "https://docker.io")", "hosts.toml", "/d", "docker.io", false);
  ASSERT_TRUE(hub.ok());
  EXPECT_EQ(hub->back().api_root, "https://registry-1.docker.io/v2");
}

TEST(HostsTomlTest, ErrorsNameFileAndLine) {
  struct Case {
    std::string toml;
    std::string part;
  };
  const Case cases[] = {
      {"server = ", "hosts.toml:1"},
      {"[host.\"https://m\"]\ncapabilities = [\"pull\", \"fly\"]\n", "hosts.toml:2"},
      {"[host.\"ftp://m\"]\n", "only http"},
      {"server = 5\n", "server must be a string"},
      {"[host.\"https://m\"]\nskip_verify = \"yes\"\n", "skip_verify"},
      // A header is one request line: a line break or NUL in its value would
      // end it and start a header nobody declared; a name must be a token.
      {"[host.\"https://m\".header]\nx-a = \"v\\r\\nX-Injected: 1\"\n",
       "hosts.toml:2:7: header \"x-a\": the value holds a control character"},
      {"[header]\nx-a = [\"ok\", \"Basic\\u0000 x\"]\n", "hosts.toml:2:7: header \"x-a\""},
      {"[header]\n\"x a\" = \"v\"\n", "header name \"x a\" is not an HTTP field name"},
      {"[header]\n\"\" = \"v\"\n", "header name \"\" is not an HTTP field name"},
      // A key containerd does not read is refused, not quietly passed over.
      {"skip_verfy = true\n", "hosts.toml:1:14: unknown key \"skip_verfy\""},
      {"[host.\"https://m\"]\nproxy = \"http://p\"\n", "hosts.toml:2:9: unknown key \"proxy\""},
      {"[host.\"https://m\"]\nserver = \"https://x\"\n", "unknown key \"server\""},
      // One client certificate: libcurl presents one.
      {"client = [\"a.pem\", \"b.pem\"]\n", "client lists 2 certificates"},
      {"client = [[\"a.cert\"]]\n", "client must be a path"},
      {"client = 5\n", "client must be a path"},
      {"dial_timeout = \"soon\"\n", "dial_timeout must be a duration"},
      {"dial_timeout = \"0s\"\n", "dial_timeout must be a duration"},
      {"dial_timeout = \"1h\"\n", "dial_timeout must be a duration"},
      {"dial_timeout = 3\n", "dial_timeout must be a duration"},
      // A value of the wrong type is refused where it is, never dropped.
      {"ca = 5\n", "hosts.toml:1:6: ca must be a string or a list of strings"},
      {"[host.\"https://m\"]\nca = [\"a.pem\", 5]\n",
       "hosts.toml:2:16: ca lists something that is not a string"},
      {"header = \"x-a: v\"\n", "hosts.toml:1:10: header must be a table"},
      {"[header]\nx-a = 5\n", "hosts.toml:2:7: header \"x-a\" must be a string or a list"},
      {"[header]\nx-a = [\"ok\", true]\n", "header \"x-a\" lists something that is not a string"},
  };
  for (const Case& c : cases) {
    auto eps = ParseHostsToml(c.toml, "hosts.toml", "/d", "r.io", false);
    ASSERT_FALSE(eps.ok()) << c.toml;
    EXPECT_NE(std::string(eps.status().message()).find(c.part), std::string::npos) << eps.status();
  }
}

class HostsDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imgsel-hosts-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& sub, const std::string& text) {
    std::filesystem::create_directories(dir_ + "/" + sub);
    std::ofstream(dir_ + "/" + sub + "/hosts.toml") << text;
  }
  std::string dir_;
};

// A hosts.toml that is not a file (here a link to /dev/zero) is an error
// naming it, neither read without end nor passed over.
TEST_F(HostsDirTest, AHostsTomlThatIsNotAFileIsRefused) {
  std::filesystem::create_directories(dir_ + "/r.io");
  std::filesystem::create_symlink("/dev/zero", dir_ + "/r.io/hosts.toml");
  auto eps = EndpointsFor(dir_, "r.io", false);
  ASSERT_FALSE(eps.ok());
  EXPECT_TRUE(absl::StrContains(eps.status().message(), "r.io/hosts.toml: not a regular file"))
      << eps.status();
}

// The CA bundle a hosts.toml names is read within a bound: /dev/zero ends in
// an error before any connection, not in memory without end.
TEST(HttpTransportTest, ACaFileIsReadWithinABound) {
  HttpTransport http;
  HttpRequest req;
  req.method = "GET";
  req.url = "https://127.0.0.1:1/v2/";
  req.tls.ca_files = {"/dev/zero"};
  auto resp = http.Perform(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(resp.status().message(), "CA file: /dev/zero: larger than"))
      << resp.status();
}

// client and dial_timeout, at the top level and per host, as containerd reads them.
TEST(HostsTomlTest, ClientCertificateAndDialTimeout) {
  struct Case {
    std::string toml;
    std::string cert, key;
    absl::Duration dial;
  };
  const Case cases[] = {
      {"client = \"c.pem\"\n", "/d/c.pem", "", absl::ZeroDuration()},
      {"client = [\"/abs/c.pem\"]\n", "/abs/c.pem", "", absl::ZeroDuration()},
      {"client = [[\"c.cert\", \"c.key\"]]\ndial_timeout = \"1m30s\"\n", "/d/c.cert", "/d/c.key",
       absl::Seconds(90)},
      {"dial_timeout = \"250ms\"\n", "", "", absl::Milliseconds(250)},
  };
  for (const Case& c : cases) {
    for (bool per_host : {false, true}) {
      std::string toml = per_host ? "[host.\"https://m.example\"]\n" + c.toml : c.toml;
      auto eps = ParseHostsToml(toml, "hosts.toml", "/d", "r.io", false);
      ASSERT_TRUE(eps.ok()) << toml << ": " << eps.status();
      const RegistryEndpoint& ep = per_host ? eps->front() : eps->back();
      EXPECT_EQ(ep.tls.client_cert, c.cert) << toml;
      EXPECT_EQ(ep.tls.client_key, c.key) << toml;
      EXPECT_EQ(ep.dial_timeout, c.dial) << toml;
      if (per_host) {  // the server keeps its own (none)
        EXPECT_EQ(eps->back().tls.client_cert, "") << toml;
        EXPECT_EQ(eps->back().dial_timeout, absl::ZeroDuration()) << toml;
      }
    }
  }
}

// config_path is a list, as containerd 2.x reads it: each root in turn, and
// in a root host_port_, host:port, then _default; the first directory that
// exists is the registry's.
TEST_F(HostsDirTest, ConfigPathListFirstRootWithADirectoryWins) {
  const std::string a = dir_ + "/a", b = dir_ + "/b", missing = dir_ + "/missing";
  auto write = [](const std::string& root, const std::string& sub, const std::string& server) {
    std::filesystem::create_directories(root + "/" + sub);
    std::ofstream(root + "/" + sub + "/hosts.toml") << "server = \"" << server << "\"\n";
  };
  write(a, "only-a.io", "https://a-only.example");
  write(b, "only-b.io", "https://b-only.example");
  write(a, "both.io", "https://a-both.example");
  write(b, "both.io", "https://b-both.example");
  write(b, "_default", "https://b-default.example");
  struct Case {
    std::string config_path, registry, want;
  };
  const Case cases[] = {
      {a + ":" + b, "only-a.io", "https://a-only.example/v2"},
      {a + ":" + b, "only-b.io", "https://b-only.example/v2"},
      {a + ":" + b, "both.io", "https://a-both.example/v2"},
      {b + ":" + a, "both.io", "https://b-both.example/v2"},
      // b's _default is found before looking in a at all.
      {b + ":" + a, "only-a.io", "https://b-default.example/v2"},
      {a + ":" + b, "other.io", "https://b-default.example/v2"},
      // Empty entries and directories that do not exist are passed over.
      {"::" + missing + "::" + a + ":", "only-a.io", "https://a-only.example/v2"},
      {a, "other.io", "https://other.io/v2"},
  };
  for (const Case& c : cases) {
    auto eps = EndpointsFor(c.config_path, c.registry, false);
    ASSERT_TRUE(eps.ok()) << c.config_path << " " << c.registry << ": " << eps.status();
    EXPECT_EQ(eps->back().api_root, c.want) << c.config_path << " " << c.registry;
  }
}

// A host directory without hosts.toml is Docker's certs.d layout, as
// containerd reads it: *.crt are CAs, a *.cert with its *.key the client
// certificate, for the registry itself. Its existence ends the lookup.
TEST_F(HostsDirTest, ADockerCertsDirectoryIsReadAsContainerdReadsIt) {
  const std::string docker = dir_ + "/docker", host = docker + "/r.io:5000";
  std::filesystem::create_directories(host);
  for (const char* f : {"ca.crt", "client.cert", "client.key", "README"}) {
    std::ofstream(host + "/" + f) << "x";
  }
  Write("_default", "server = \"https://default.example\"\n");
  auto eps = EndpointsFor(docker + ":" + dir_, "r.io:5000", false);
  ASSERT_TRUE(eps.ok()) << eps.status();
  ASSERT_EQ(eps->size(), 1u);
  EXPECT_EQ((*eps)[0].api_root, "https://r.io:5000/v2");
  EXPECT_EQ((*eps)[0].tls.ca_files, std::vector<std::string>{host + "/ca.crt"});
  EXPECT_EQ((*eps)[0].tls.client_cert, host + "/client.cert");
  EXPECT_EQ((*eps)[0].tls.client_key, host + "/client.key");
  std::ofstream(host + "/second.cert") << "x";
  auto two = EndpointsFor(docker, "r.io:5000", false);
  ASSERT_FALSE(two.ok());
  EXPECT_TRUE(absl::StrContains(two.status().message(), "more than one client certificate"))
      << two.status();
}

TEST_F(HostsDirTest, LookupOrderHostPortThenDefault) {
  Write("r.io:5000", "server = \"https://exact.example\"\n");
  Write("_default", "server = \"https://fallback.example\"\n");
  auto exact = EndpointsFor(dir_, "r.io:5000", false);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->back().api_root, "https://exact.example/v2");
  auto other = EndpointsFor(dir_, "other.io", false);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->back().api_root, "https://fallback.example/v2");
  Write("r.io_5000_", "server = \"https://underscore.example\"\n");
  EXPECT_EQ(EndpointsFor(dir_, "r.io:5000", false)->back().api_root,
            "https://underscore.example/v2");
  auto none = EndpointsFor("", "plain.io", true);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->back().api_root, "http://plain.io/v2");
}

}  // namespace
}  // namespace imgsel::registry

namespace imgsel::registry {
namespace {

TEST(HostsTomlTest, LoopbackRegistriesDefaultToPlainHttp) {
  const std::pair<const char*, bool> cases[] = {
      {"localhost", true},
      {"localhost:5000", true},
      {"127.0.0.1:5000", true},
      {"127.1.2.3", true},
      {"[::1]:5000", true},
      {"registry.example.com", false},
      {"10.0.0.1:5000", false},
      {"localhost.example.com:5000", false},
      // Names that look like loopback addresses are names: https.
      {"127.evil.com", false},
      {"127.evil.com:5000", false},
      {"127.0.0.1.nip.io", false},
      {"127", false},
      {"[::1]", true},
      {"[::2]:5000", false},
  };
  for (const auto& [registry, plain] : cases) {
    EXPECT_EQ(IsLoopbackRegistry(registry), plain) << registry;
    auto eps = EndpointsFor("", registry, false);
    ASSERT_TRUE(eps.ok()) << registry;
    EXPECT_EQ(absl::StartsWith((*eps)[0].api_root, "http://"), plain) << (*eps)[0].api_root;
  }
}

}  // namespace
}  // namespace imgsel::registry
