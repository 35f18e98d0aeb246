// The referrers API path and the fault matrix, against an in-process
// registry that speaks the distribution spec (and misbehaves on request).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "registry/client.h"
#include "registry/referrers.h"
#include "simdjson.h"
#include "tests/registry/fake_registry.h"
#include "tests/registry/fake_server.h"
#include "tests/registry/test_images.h"

namespace imgsel::registry {
namespace {

using testing::Blob;
using testing::FakeRegistry;
using testing::FakeRequest;
using testing::FakeResponse;
using testing::FakeServer;
using testing::MakeArtifact;
using testing::TestArtifact;

class ReferrersApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    amd_ = testing::MakeImage("amd64");
    arm_ = testing::MakeImage("arm64");
    index_ = testing::MakeIndex({{"amd64", &amd_}, {"arm64", &arm_}});
    reg_.AddManifest(index_, "v1");
    reg_.AddManifest(amd_.manifest);
    reg_.AddManifest(arm_.manifest);
    nfd_ = MakeArtifact(index_, std::string(kNfdArtifactType), "nfd: spec",
                        std::string(kNfdSpecLayerType), "2024-01-01T00:00:00Z");
    oci_ = MakeArtifact(amd_.manifest, std::string(kOciCompatArtifactType), "{\"oci\":1}",
                        std::string(kOciCompatSpecLayerType), "2024-01-02T00:00:00Z");
    for (TestArtifact* a : {&nfd_, &oci_}) {
      reg_.AddManifest(a->manifest);
      reg_.AddBlob(a->layer);
      reg_.AddBlob(a->config);
    }
    auto ref = ParseReference(reg_.host() + "/team/app:v1");
    ASSERT_TRUE(ref.ok());
    ref_ = *ref;
  }

  std::unique_ptr<RegistryClient> Client(absl::Duration timeout = absl::Seconds(10)) {
    ClientOptions o;
    o.plain_http = true;
    o.use_docker_config = false;
    o.request_timeout = timeout;
    o.connect_timeout = absl::Seconds(2);
    o.cache = cache_;
    auto c = RegistryClient::Create(o);
    EXPECT_TRUE(c.ok());
    return std::move(*c);
  }

  FakeRegistry reg_;
  testing::TestImage amd_, arm_;
  Blob index_;
  TestArtifact nfd_, oci_;
  Reference ref_;
  DiskCache* cache_ = nullptr;
};

TEST_F(ReferrersApiTest, ListsThroughTheApiForEverySubjectInParallel) {
  auto client = Client();
  ReferrersClient referrers(client.get());
  auto lists =
      referrers.List(ref_, {index_.digest(), amd_.manifest.digest(), arm_.manifest.digest()}, {});
  ASSERT_EQ(lists.size(), 3u);
  for (const auto& l : lists) ASSERT_TRUE(l.status.ok()) << l.status;
  EXPECT_EQ(lists[0].subject, index_.digest());
  ASSERT_EQ(lists[0].artifacts.size(), 1u);
  EXPECT_EQ(lists[0].artifacts[0].digest, nfd_.manifest.digest());
  EXPECT_EQ(lists[0].artifacts[0].artifact_type, kNfdArtifactType);
  ASSERT_EQ(lists[1].artifacts.size(), 1u);
  EXPECT_EQ(lists[1].artifacts[0].artifact_type, kOciCompatArtifactType);
  EXPECT_TRUE(lists[2].artifacts.empty());
  EXPECT_FALSE(lists[0].via_tag_schema);
  EXPECT_EQ(client->referrers_mode(ref_), RegistryClient::ReferrersMode::kApi);
  // The repository was not known: the tag schema was asked alongside by
  // the subjects that started before the first answer made it known (at
  // most one each); known now, it is not asked again.
  const int tags = reg_.Count("/manifests/sha256-");
  EXPECT_GE(tags, 1);
  EXPECT_LE(tags, 3);
  auto again = referrers.List(ref_, {amd_.manifest.digest(), arm_.manifest.digest()}, {});
  for (const auto& l : again) ASSERT_TRUE(l.status.ok()) << l.status;
  EXPECT_EQ(reg_.Count("/manifests/sha256-"), tags);
  EXPECT_EQ(reg_.Count("/referrers/"), 5);
}

TEST_F(ReferrersApiTest, FiltersWhenTheRegistryDidNot) {
  reg_.set_filters_applied(false);
  reg_.AddManifest(
      MakeArtifact(index_, "application/x-other", "x", "text/plain", "2024-01-01T00:00:00Z")
          .manifest);
  auto client = Client();
  ReferrersClient referrers(client.get());
  auto lists = referrers.List(ref_, {index_.digest()}, {std::string(kNfdArtifactType)});
  ASSERT_TRUE(lists[0].status.ok());
  ASSERT_EQ(lists[0].artifacts.size(), 1u);
  EXPECT_EQ(lists[0].artifacts[0].artifact_type, kNfdArtifactType);
  EXPECT_EQ(reg_.Count("artifactType=" + std::string(kNfdArtifactType)), 1);
}

TEST_F(ReferrersApiTest, FetchesArtifactLayersOfTheAskedTypes) {
  auto client = Client();
  ReferrersClient referrers(client.get());
  auto lists = referrers.List(ref_, {index_.digest()}, {});
  ASSERT_EQ(lists[0].artifacts.size(), 1u);
  auto art = referrers.FetchArtifact(ref_, lists[0].artifacts[0], {std::string(kNfdSpecLayerType)});
  ASSERT_TRUE(art.ok()) << art.status();
  EXPECT_EQ(art->artifact_type, kNfdArtifactType);
  EXPECT_EQ(art->subject, index_.digest());
  ASSERT_EQ(art->layers.size(), 1u);
  EXPECT_EQ(art->layers[0].bytes, "nfd: spec");
  auto none = referrers.FetchArtifact(ref_, lists[0].artifacts[0], {"application/x-unknown"});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->layers.empty());
}

// Several subjects on a registry not yet known are all asked at once: each
// probes the API once and goes on to the tag schema, and the registry is
// then known.
TEST_F(ReferrersApiTest, AnUnknownRegistryIsAskedForEverySubjectAtOnce) {
  reg_.set_referrers_api(false);
  // The API's answer takes a while: every subject has asked before the
  // first answer could tell the others where to go.
  reg_.set_fault([](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (!absl::StrContains(r.target, "/referrers/")) return std::nullopt;
    return FakeResponse{404, {}, "404 page not found", absl::Milliseconds(300)};
  });
  auto client = Client();
  ReferrersClient referrers(client.get());
  auto lists =
      referrers.List(ref_, {index_.digest(), amd_.manifest.digest(), arm_.manifest.digest()}, {});
  ASSERT_EQ(lists.size(), 3u);
  for (const auto& l : lists) {
    ASSERT_TRUE(l.status.ok()) << l.status;
    EXPECT_TRUE(l.via_tag_schema);
  }
  EXPECT_EQ(reg_.Count("/referrers/"), 3);
  EXPECT_EQ(reg_.Count("/manifests/sha256-"), 3);
  EXPECT_EQ(client->referrers_mode(ref_), RegistryClient::ReferrersMode::kTagSchema);
}

TEST_F(ReferrersApiTest, NoApiFallsBackToTheTagAndRemembers) {
  reg_.set_referrers_api(false);
  // The tag schema index for the index digest lists the NFD artifact.
  Blob tag_index{"application/vnd.oci.image.index.v1+json",
                 absl::StrCat("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image."
                              "index.v1+json\",\"manifests\":[",
                              nfd_.manifest.Descriptor(
                                  absl::StrCat(",\"artifactType\":\"", kNfdArtifactType, "\"")),
                              "]}")};
  reg_.AddManifest(tag_index, ReferrersTag(index_.digest()));
  auto client = Client();
  ReferrersClient referrers(client.get());
  auto first = referrers.List(ref_, {index_.digest()}, {});
  ASSERT_TRUE(first[0].status.ok()) << first[0].status;
  EXPECT_TRUE(first[0].via_tag_schema);
  ASSERT_EQ(first[0].artifacts.size(), 1u);
  EXPECT_EQ(client->referrers_mode(ref_), RegistryClient::ReferrersMode::kTagSchema);
  auto second = referrers.List(ref_, {amd_.manifest.digest(), arm_.manifest.digest()}, {});
  EXPECT_TRUE(second[0].status.ok());
  EXPECT_TRUE(second[0].artifacts.empty());  // 404 on the tag: no artifacts, not an error
  EXPECT_EQ(reg_.Count("/referrers/"), 1);   // the API was asked once
}

TEST_F(ReferrersApiTest, NonIndexAnswerMeansNoApi) {
  reg_.set_fault([](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (absl::StrContains(r.target, "/referrers/")) return FakeResponse{200, {}, "<html>hi</html>"};
    return std::nullopt;
  });
  auto client = Client();
  ReferrersClient referrers(client.get());
  auto lists = referrers.List(ref_, {index_.digest()}, {});
  EXPECT_TRUE(lists[0].status.ok()) << lists[0].status;
  EXPECT_TRUE(lists[0].via_tag_schema);
}

TEST_F(ReferrersApiTest, WarmCacheMakesNoRequest) {
  char tmpl[] = "/tmp/imgsel-apicache-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  auto cache = DiskCache::Open({tmpl, 1 << 20});
  ASSERT_TRUE(cache.ok());
  cache_ = cache->get();
  std::vector<std::string> subjects = {index_.digest(), amd_.manifest.digest(),
                                       arm_.manifest.digest()};
  {
    auto cold = Client();
    ReferrersClient referrers(cold.get());
    auto lists = referrers.List(ref_, subjects, {});
    ASSERT_TRUE(referrers.FetchArtifact(ref_, lists[0].artifacts[0], {}).ok());
    // One referrers query per subject, the tag schema's alongside while the
    // repository is not known (1 to 3), the artifact manifest, its layer.
    EXPECT_GE(cold->round_trips(), 6);
    EXPECT_LE(cold->round_trips(), 8);
  }
  size_t before = reg_.requests().size();
  auto warm = Client();
  ReferrersClient referrers(warm.get());
  auto lists = referrers.List(ref_, subjects, {});
  ASSERT_EQ(lists[0].artifacts.size(), 1u);
  auto art = referrers.FetchArtifact(ref_, lists[0].artifacts[0], {});
  ASSERT_TRUE(art.ok());
  EXPECT_EQ(warm->round_trips(), 0);
  EXPECT_EQ(reg_.requests().size(), before);
  cache_ = nullptr;
  std::filesystem::remove_all(tmpl);
}

TEST_F(ReferrersApiTest, BearerTokenFetchedOnceAndReused) {
  reg_.set_auth(FakeRegistry::Auth::kBearer);
  auto client = Client();
  Credentials alice{"alice", "pw", "", ""};
  auto m = client->Resolve(ref_, &alice);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, index_.digest());
  ASSERT_TRUE(client->FetchManifest(ref_, amd_.manifest.digest(), &alice).ok());
  EXPECT_EQ(reg_.Count("/token"), 1);
  // Another caller's credentials never reuse alice's token.
  Credentials mallory{"mallory", "guess", "", ""};
  auto denied = client->FetchManifest(ref_, arm_.manifest.digest(), &mallory);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(std::string(denied.status().message()).find("guess"), std::string::npos);
  // The scope asked for is the repository's pull scope.
  bool scoped = false;
  for (const FakeRequest& r : reg_.requests()) {
    scoped |= absl::StrContains(r.target, "scope=repository%3Ateam%2Fapp%3Apull");
  }
  EXPECT_TRUE(scoped);
}

TEST_F(ReferrersApiTest, BasicAuthAndRegistryToken) {
  reg_.set_auth(FakeRegistry::Auth::kBasic);
  auto client = Client();
  Credentials alice{"alice", "pw", "", ""};
  ASSERT_TRUE(client->Resolve(ref_, &alice).ok());
  auto anonymous = client->Resolve(ref_, nullptr);
  EXPECT_EQ(anonymous.status().code(), absl::StatusCode::kUnauthenticated);
  reg_.set_auth(FakeRegistry::Auth::kBearer);
  Credentials token;
  token.registry_token = "T1";
  ASSERT_TRUE(client->FetchManifest(ref_, arm_.manifest.digest(), &token).ok());
  EXPECT_EQ(reg_.Count("/token"), 0);
}

TEST_F(ReferrersApiTest, IdentityTokenIsExchangedForAnAccessToken) {
  reg_.set_auth(FakeRegistry::Auth::kBearer);
  auto client = Client();
  Credentials refresh;
  refresh.identity_token = "R1";
  auto m = client->Resolve(ref_, &refresh);
  ASSERT_TRUE(m.ok()) << m.status();
  for (const FakeRequest& r : reg_.requests()) {
    EXPECT_EQ(r.target.find("R1"), std::string::npos);  // never in a URL
  }
}

TEST_F(ReferrersApiTest, ConcurrentRequestsPerRegistryAreBounded) {
  std::atomic<int> in_flight{0}, peak{0};
  reg_.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    int now = ++in_flight;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    absl::SleepFor(absl::Milliseconds(30));
    --in_flight;
    return std::nullopt;
  });
  ClientOptions o;
  o.plain_http = true;
  o.use_docker_config = false;
  o.max_concurrent_per_registry = 2;
  auto client = RegistryClient::Create(o);
  ASSERT_TRUE(client.ok());
  ReferrersClient referrers(client->get());
  std::vector<std::string> subjects;
  for (int i = 0; i < 8; ++i) subjects.push_back(Sha256Digest(std::to_string(i)));
  auto lists = referrers.List(ref_, subjects, {});
  for (const auto& l : lists) EXPECT_TRUE(l.status.ok()) << l.status;
  EXPECT_LE(peak.load(), 2);
  EXPECT_GE(peak.load(), 1);
}

// Subjects are listed all at once up to kMaxParallelSubjects: an index of
// 32 entries is one listing round trip, not five. Each listing is held until
// as many are in flight as may be (or a bounded while has passed); more
// subjects than that wait their turn.
TEST_F(ReferrersApiTest, ListsUpToKMaxParallelSubjectsAtOnce) {
  const int at_once = static_cast<int>(kMaxParallelSubjects);
  absl::Mutex mu;
  int in_flight = 0, peak = 0;
  bool reached = false;
  reg_.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (!absl::StrContains(r.target, "/referrers/")) return std::nullopt;
    absl::MutexLock lock(&mu);
    peak = std::max(peak, ++in_flight);
    if (in_flight >= at_once) reached = true;
    mu.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(10));
    --in_flight;
    return std::nullopt;
  });
  auto client = Client();
  client->set_referrers_mode(ref_, RegistryClient::ReferrersMode::kApi);
  ReferrersClient referrers(client.get());
  std::vector<std::string> subjects;
  for (int i = 0; i < at_once + 6; ++i) subjects.push_back(Sha256Digest(std::to_string(i)));
  auto lists = referrers.List(ref_, subjects, {});
  for (const auto& l : lists) EXPECT_TRUE(l.status.ok()) << l.status;
  absl::MutexLock lock(&mu);
  EXPECT_EQ(peak, at_once);
  EXPECT_EQ(reg_.Count("/referrers/"), at_once + 6);
}

// Every registry a pod spec names gets request slots of its own (here
// through one `_default` hosts.toml, as many names behind one mirror): the
// client keeps those of at most kMaxIdleLimiters registries with nothing in
// flight, so a stream of new names cannot grow it without end.
TEST_F(ReferrersApiTest, RequestSlotsOfIdleRegistriesAreBounded) {
  char tmpl[] = "/tmp/imgsel-limiters-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string certs_d = tmpl;
  std::filesystem::create_directories(certs_d + "/_default");
  std::ofstream(certs_d + "/_default/hosts.toml") << "server = \"" << reg_.url() << "\"\n";
  ClientOptions o;
  o.hosts_dir = certs_d;
  o.use_docker_config = false;
  auto client = RegistryClient::Create(o);
  ASSERT_TRUE(client.ok()) << client.status();
  const size_t names = RegistryClient::kMaxIdleLimiters + 100;
  for (size_t i = 0; i < names; ++i) {
    auto ref = ParseReference(absl::StrCat("r", i, ".example/app:v1"));
    ASSERT_TRUE(ref.ok()) << ref.status();
    auto m = (*client)->Resolve(*ref);
    ASSERT_TRUE(m.ok()) << i << ": " << m.status();  // the fake serves any repository
    ASSERT_LE((*client)->request_limiters(), RegistryClient::kMaxIdleLimiters) << i;
  }
  EXPECT_GE((*client)->request_limiters(), 1u);
  std::filesystem::remove_all(certs_d);
}

// Each fault: a clear error, never a crash, never a hang.
TEST_F(ReferrersApiTest, FaultMatrix) {
  struct Case {
    std::string name;
    std::function<std::optional<FakeResponse>(const FakeRequest&)> fault;
    absl::StatusCode code;
    std::string message_part;
  };
  std::string layer_path = "/blobs/" + nfd_.layer.digest();
  auto on_layer = [layer_path](FakeResponse r) {
    return [layer_path, r](const FakeRequest& q) -> std::optional<FakeResponse> {
      if (absl::StrContains(q.target, layer_path)) return r;
      return std::nullopt;
    };
  };
  std::vector<Case> cases = {
      {"401 without realm", on_layer({401, {{"WWW-Authenticate", "Bearer service=\"x\""}}, ""}),
       absl::StatusCode::kUnauthenticated, "no realm"},
      {"401 without challenge", on_layer({401, {}, ""}), absl::StatusCode::kUnauthenticated,
       "WWW-Authenticate"},
      {"500", on_layer({500, {}, ""}), absl::StatusCode::kUnavailable, "HTTP 500"},
      {"timeout", on_layer({200, {}, "late", absl::Seconds(5)}),
       absl::StatusCode::kDeadlineExceeded, "timed out"},
      {"truncated",
       on_layer({200, {{"Content-Length", "9"}}, "nfd: spec", absl::ZeroDuration(), 4}),
       absl::StatusCode::kDataLoss, "connection closed"},
      {"digest mismatch", on_layer({200, {}, "nfd: evil"}), absl::StatusCode::kDataLoss,
       "digest mismatch"},
      {"oversize", on_layer({200, {}, std::string(2 << 20, 'x')}),
       absl::StatusCode::kResourceExhausted, "limit"},
      {"missing blob", on_layer({404, {}, R"({"errors":[{"code":"BLOB_UNKNOWN"}]})"}),
       absl::StatusCode::kNotFound, "BLOB_UNKNOWN"},
      // The bounds of one answer (the 4 MiB manifest cap, ClientOptions::max_redirects,
      // 64 KiB of headers).
      {"manifest past 4 MiB",
       [manifest_path = "/manifests/" + nfd_.manifest.digest()](
           const FakeRequest& q) -> std::optional<FakeResponse> {
         if (absl::StrContains(q.target, manifest_path)) {
           return FakeResponse{200, {}, std::string((4 << 20) + 1, 'm')};
         }
         return std::nullopt;
       },
       absl::StatusCode::kResourceExhausted, "larger than the manifest limit of 4194304 bytes"},
      {"redirect loop", on_layer({302, {{"Location", layer_path}}, ""}),
       absl::StatusCode::kUnavailable, "more than 5 redirects"},
      {"headers past 64 KiB", on_layer({200, {{"X-Pad", std::string(65 << 10, 'h')}}, "nfd: spec"}),
       absl::StatusCode::kUnavailable, "response headers exceed the limit of 65536 bytes"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    reg_.set_fault(c.fault);
    // Room for a loaded machine (or a sanitizer) to connect; the late
    // answer (5 s) is still far past it.
    auto client = Client(absl::Seconds(2));
    ReferrersClient referrers(client.get());
    ArtifactDescriptor d{nfd_.manifest.media_type,
                         nfd_.manifest.digest(),
                         static_cast<int64_t>(nfd_.manifest.bytes.size()),
                         "",
                         {}};
    auto art = referrers.FetchArtifact(ref_, d, {});
    ASSERT_FALSE(art.ok());
    EXPECT_EQ(art.status().code(), c.code) << art.status();
    EXPECT_NE(std::string(art.status().message()).find(c.message_part), std::string::npos)
        << art.status();
    // The error names which layer of which artifact.
    EXPECT_NE(std::string(art.status().message()).find(nfd_.manifest.digest()), std::string::npos)
        << art.status();
  }
}

TEST_F(ReferrersApiTest, BadArtifactManifests) {
  Blob not_json{"application/vnd.oci.image.manifest.v1+json", "{not json"};
  Blob declared_big{"application/vnd.oci.image.manifest.v1+json",
                    absl::StrCat("{\"layers\":[{\"mediaType\":\"a\",\"digest\":\"",
                                 nfd_.layer.digest(), "\",\"size\":99999999}]}")};
  reg_.AddManifest(not_json);
  reg_.AddManifest(declared_big);
  auto client = Client();
  ReferrersClient referrers(client.get());
  auto bad = referrers.FetchArtifact(ref_, {"", not_json.digest(), 9, "", {}}, {});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  EXPECT_NE(std::string(bad.status().message()).find("not valid JSON"), std::string::npos);
  size_t before = reg_.requests().size();
  auto big = referrers.FetchArtifact(ref_, {"", declared_big.digest(), 9, "", {}}, {});
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted) << big.status();
  EXPECT_EQ(reg_.requests().size(), before + 1);  // the manifest only: the layer was not fetched
  // A referrers answer that is garbage JSON with a 500: an error for that subject only.
  reg_.set_fault([](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (absl::StrContains(r.target, "/referrers/")) return FakeResponse{500, {}, "{"};
    return std::nullopt;
  });
  auto lists = referrers.List(ref_, {index_.digest()}, {});
  EXPECT_EQ(lists[0].status.code(), absl::StatusCode::kUnavailable) << lists[0].status;
}

TEST_F(ReferrersApiTest, RedirectToAnotherHostDropsAuthorization) {
  FakeServer storage([&](const FakeRequest&) { return FakeResponse{200, {}, "nfd: spec"}; });
  reg_.set_auth(FakeRegistry::Auth::kBasic);
  std::string layer_path = "/blobs/" + nfd_.layer.digest();
  std::string target = storage.url() + "/bucket/object?sig=1";
  reg_.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (absl::StrContains(r.target, layer_path) && !r.Header("authorization").empty()) {
      return FakeResponse{307, {{"Location", target}}, ""};
    }
    return std::nullopt;
  });
  auto client = Client();
  Credentials alice{"alice", "pw", "", ""};
  auto blob = client->FetchBlob(ref_, nfd_.layer.digest(), 0, &alice);
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_EQ(*blob, "nfd: spec");
  auto seen = storage.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/bucket/object?sig=1");
  EXPECT_EQ(seen[0].Header("authorization"), "");
}

TEST_F(ReferrersApiTest, HostsTomlMirrorTriedFirstWithNamespace) {
  FakeRegistry mirror;  // has nothing: answers 404, then the server is asked
  char tmpl[] = "/tmp/imgsel-certsd-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = std::string(tmpl) + "/" + reg_.host();
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/hosts.toml") << "server = \"" << reg_.url() << "\"\n[host.\""
                                     << mirror.url() << "\"]\n  capabilities = [\"pull\"]\n";
  ClientOptions o;
  o.hosts_dir = tmpl;
  o.use_docker_config = false;
  auto client = RegistryClient::Create(o);
  ASSERT_TRUE(client.ok());
  auto m = (*client)->Resolve(ref_);  // resolve: the pull-only mirror is not trusted with it
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(mirror.Count("/manifests/v1"), 0);
  // By digest the mirror is asked first, naming the registry it stands for.
  ASSERT_TRUE((*client)->FetchManifest(ref_, index_.digest()).ok());
  EXPECT_EQ(mirror.Count("/manifests/" + index_.digest() +
                         "?ns=" + absl::StrReplaceAll(reg_.host(), {{":", "%3A"}})),
            1);
  mirror.AddManifest(amd_.manifest);
  ASSERT_TRUE((*client)->FetchManifest(ref_, amd_.manifest.digest()).ok());
  EXPECT_EQ(reg_.Count("/manifests/" + amd_.manifest.digest()), 0);  // the mirror had it
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace imgsel::registry
