// A hosts.toml mirror in front of an upstream, as an air-gapped node has it:
// what a 404 from the mirror hands over to, and what stands when the
// upstream cannot answer. The mirror is an in-process registry without the
// referrers API (as docker-registry and most mirrors are); the upstream is a
// name that does not resolve, an in-process registry, or one that fails.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "registry/client.h"
#include "registry/referrers.h"
#include "tests/registry/fake_registry.h"
#include "tests/registry/test_images.h"

namespace imgsel::registry {
namespace {

using testing::Blob;
using testing::FakeRegistry;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::MakeArtifact;
using testing::TestArtifact;

// The index tagged sha256-<hex>, as `oras attach` and `imgsel attach` keep it.
Blob TagSchemaIndex(const TestArtifact& artifact, absl::string_view type) {
  return {
      "application/vnd.oci.image.index.v1+json",
      absl::StrCat("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+"
                   "json\",\"manifests\":[",
                   artifact.manifest.Descriptor(absl::StrCat(",\"artifactType\":\"", type, "\"")),
                   "]}")};
}

enum class Upstream {
  kUnresolvable,  // https://upstream.invalid: no DNS answer, no connection
  kFailing,       // answers 503 to everything
  kWithApi,       // the referrers API, holding the artifact
  kWithTag,       // no referrers API, holding the sha256-<hex> tag
};

struct Case {
  const char* name;
  Upstream upstream;
  bool mirror_has_tag;  // the mirror holds the sha256-<hex> tag index
  // Expected: the listing succeeds (never "unreachable") and finds the
  // artifact or not.
  bool finds_artifact;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class MirrorHandoverTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    amd_ = testing::MakeImage("amd64");
    index_ = testing::MakeIndex({{"amd64", &amd_}});
    nfd_ = MakeArtifact(index_, std::string(kNfdArtifactType), "nfd: spec",
                        std::string(kNfdSpecLayerType), "2024-01-01T00:00:00Z");
    mirror_.set_referrers_api(false);
    char tmpl[] = "/tmp/imgsel-mirror-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    certs_d_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(certs_d_); }

  // Puts the image (and, when asked, the artifact) into a registry.
  void Fill(FakeRegistry& reg, bool with_artifact, bool with_tag) {
    reg.AddManifest(index_, "v1");
    reg.AddManifest(amd_.manifest);
    if (with_artifact || with_tag) {
      reg.AddManifest(nfd_.manifest);
      reg.AddBlob(nfd_.layer);
      reg.AddBlob(nfd_.config);
    }
    if (with_tag) {
      reg.AddManifest(TagSchemaIndex(nfd_, kNfdArtifactType), ReferrersTag(index_.digest()));
    }
  }

  // certs.d/upstream.invalid/hosts.toml: the mirror first (pull, resolve),
  // then `server`.
  std::unique_ptr<RegistryClient> Client(const std::string& server) {
    std::string dir = certs_d_ + "/upstream.invalid";
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/hosts.toml") << "server = \"" << server << "\"\n[host.\"" << mirror_.url()
                                       << "\"]\n  capabilities = [\"pull\", \"resolve\"]\n";
    ClientOptions o;
    o.hosts_dir = certs_d_;
    o.use_docker_config = false;
    o.connect_timeout = absl::Seconds(2);
    o.request_timeout = absl::Seconds(10);
    auto c = RegistryClient::Create(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  }

  static Reference Ref() {
    auto ref = ParseReference("upstream.invalid/team/app:v1");
    EXPECT_TRUE(ref.ok());
    return *ref;
  }

  testing::TestImage amd_;
  Blob index_;
  TestArtifact nfd_;
  FakeRegistry mirror_;
  std::string certs_d_;
};

TEST_P(MirrorHandoverTest, ListsReferrersThroughTheMirror) {
  const Case& c = GetParam();
  Fill(mirror_, /*with_artifact=*/c.mirror_has_tag, c.mirror_has_tag);
  FakeRegistry upstream;
  std::string server = "https://upstream.invalid";
  if (c.upstream == Upstream::kFailing) {
    upstream.set_fault([](const FakeRequest&) -> std::optional<FakeResponse> {
      return FakeResponse{503, {}, R"({"errors":[{"code":"UNAVAILABLE"}]})"};
    });
    server = upstream.url();
  } else if (c.upstream == Upstream::kWithApi || c.upstream == Upstream::kWithTag) {
    upstream.set_referrers_api(c.upstream == Upstream::kWithApi);
    Fill(upstream, /*with_artifact=*/true, /*with_tag=*/c.upstream == Upstream::kWithTag);
    server = upstream.url();
  }
  auto client = Client(server);

  auto resolved = client->Resolve(Ref());
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->digest, index_.digest());

  ReferrersClient referrers(client.get());
  auto lists = referrers.List(Ref(), {index_.digest(), amd_.manifest.digest()},
                              {std::string(kNfdArtifactType)});
  ASSERT_EQ(lists.size(), 2u);
  for (const SubjectReferrers& l : lists) {
    ASSERT_TRUE(l.status.ok()) << l.subject << ": " << l.status;
  }
  ASSERT_EQ(lists[0].artifacts.size(), c.finds_artifact ? 1u : 0u);
  EXPECT_TRUE(lists[1].artifacts.empty());
  if (c.finds_artifact) {
    EXPECT_EQ(lists[0].artifacts[0].digest, nfd_.manifest.digest());
    auto artifact =
        referrers.FetchArtifact(Ref(), lists[0].artifacts[0], {std::string(kNfdSpecLayerType)});
    ASSERT_TRUE(artifact.ok()) << artifact.status();
    ASSERT_EQ(artifact->layers.size(), 1u);
    EXPECT_EQ(artifact->layers[0].bytes, "nfd: spec");
  }
  // Every request to the mirror names the registry it stands for.
  for (const FakeRequest& r : mirror_.requests()) {
    EXPECT_TRUE(absl::StrContains(r.target, "ns=upstream.invalid")) << r.target;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, MirrorHandoverTest,
    ::testing::Values(
        // Air-gapped: the mirror's 404 to the referrers API sends the lookup
        // to the tag schema, and the mirror's tag answers it.
        Case{"UnresolvableUpstreamMirrorTag", Upstream::kUnresolvable, true, true},
        // The mirror's 404 to the tag stands: no artifacts, not an error.
        Case{"UnresolvableUpstreamNoTag", Upstream::kUnresolvable, false, false},
        // An upstream that answers 5xx cannot say more than the mirror did.
        Case{"FailingUpstreamMirrorTag", Upstream::kFailing, true, true},
        Case{"FailingUpstreamNoTag", Upstream::kFailing, false, false},
        // A reachable upstream is still asked what the mirror lacks.
        Case{"UpstreamApi", Upstream::kWithApi, false, true},
        Case{"UpstreamTag", Upstream::kWithTag, false, true}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// A manifest neither the mirror has nor the upstream can be asked for is
// NotFound, named by the mirror's URL: "the mirror lacks it", not "the
// registry is unreachable".
TEST_F(MirrorHandoverTest, MissingTagIsNotFoundAtTheMirrorWhenUpstreamIsUnreachable) {
  Fill(mirror_, false, false);
  auto client = Client("https://upstream.invalid");
  auto ref = ParseReference("upstream.invalid/team/app:v2");
  ASSERT_TRUE(ref.ok());
  auto resolved = client->Resolve(*ref);
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kNotFound) << resolved.status();
  EXPECT_TRUE(absl::StrContains(resolved.status().message(), mirror_.url())) << resolved.status();
}

// With no mirror answering at all, the failure to reach is what is reported.
TEST_F(MirrorHandoverTest, NoHostAnsweringIsUnavailable) {
  auto client = Client("https://upstream.invalid");
  mirror_.set_fault([](const FakeRequest&) -> std::optional<FakeResponse> {
    return FakeResponse{503, {}, ""};
  });
  auto resolved = client->Resolve(Ref());
  ASSERT_FALSE(resolved.ok());
  EXPECT_NE(resolved.status().code(), absl::StatusCode::kNotFound) << resolved.status();
}

}  // namespace
}  // namespace imgsel::registry
