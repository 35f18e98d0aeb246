// A registry named in a pod spec may be an attacker's: what it can make
// imgsel hold in memory, write to the cache, remember, send elsewhere, spend
// in time and print is bounded. Each test plays one hostile registry on
// loopback; every test is bounded in requests and time.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/cache.h"
#include "registry/client.h"
#include "registry/http.h"
#include "registry/referrers.h"
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
using ::testing::HasSubstr;
using testing::MakeArtifact;
using testing::TestArtifact;

constexpr char kIndexType[] = "application/vnd.oci.image.index.v1+json";
constexpr char kManifestType[] = "application/vnd.oci.image.manifest.v1+json";

// Every byte a terminal could act on: C0 controls, DEL, and anything of
// 0x80 or more (C1 controls are two UTF-8 bytes).
bool HasUnsafeByte(absl::string_view s) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) return true;
  }
  return false;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/imgsel-hostile-XXXXXX";
    path_ = mkdtemp(tmpl) != nullptr ? tmpl : "";
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

ClientOptions Options(absl::Duration timeout = absl::Seconds(5)) {
  ClientOptions o;
  o.plain_http = true;
  o.use_docker_config = false;
  o.request_timeout = timeout;
  o.connect_timeout = absl::Seconds(2);
  return o;
}

std::unique_ptr<RegistryClient> NewClient(const ClientOptions& o) {
  auto c = RegistryClient::Create(o);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

Reference Ref(const FakeRegistry& r, const std::string& path) {
  auto ref = ParseReference(absl::StrCat(r.host(), "/", path));
  EXPECT_TRUE(ref.ok()) << ref.status();
  return ref.ok() ? *ref : Reference();
}

ArtifactDescriptor DescriptorOf(const Blob& manifest) {
  return {manifest.media_type,
          manifest.digest(),
          static_cast<int64_t>(manifest.bytes.size()),
          std::string(kNfdArtifactType),
          {}};
}

// An artifact manifest on `subject` whose layers are `layers` in order.
Blob ArtifactWithLayers(const Blob& subject, const std::vector<const Blob*>& layers) {
  Blob config{std::string(kEmptyConfigMediaType), "{}"};
  std::vector<std::string> descs;
  for (const Blob* l : layers) descs.push_back(l->Descriptor());
  return {
      kManifestType,
      absl::StrCat("{\"schemaVersion\":2,\"mediaType\":\"", kManifestType, "\",\"artifactType\":\"",
                   kNfdArtifactType, "\",\"config\":", config.Descriptor(), ",\"layers\":[",
                   absl::StrJoin(descs, ","), "],\"subject\":", subject.Descriptor(), "}")};
}

// A referrers index holding `descriptors` (JSON objects).
std::string IndexOf(const std::vector<std::string>& descriptors) {
  return absl::StrCat("{\"schemaVersion\":2,\"mediaType\":\"", kIndexType, "\",\"manifests\":[",
                      absl::StrJoin(descriptors, ","), "]}");
}

// The largest file under dir/records.
uintmax_t LargestRecord(const std::string& dir) {
  uintmax_t largest = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/records", ec)) {
    largest = std::max(largest, e.file_size());
  }
  return largest;
}

class HostileRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    amd_ = testing::MakeImage("amd64");
    arm_ = testing::MakeImage("arm64");
    index_ = testing::MakeIndex({{"amd64", &amd_}, {"arm64", &arm_}});
    nfd_ = MakeArtifact(index_, std::string(kNfdArtifactType), "nfd: spec",
                        std::string(kNfdSpecLayerType), "2024-01-01T00:00:00Z");
    for (FakeRegistry* r : {&reg_, &victim_}) {
      r->AddManifest(index_, "v1");
      r->AddManifest(amd_.manifest);
      r->AddManifest(arm_.manifest);
      r->AddManifest(nfd_.manifest);
      r->AddBlob(nfd_.layer);
      r->AddBlob(nfd_.config);
    }
    ref_ = Ref(reg_, "team/app:v1");
  }

  std::vector<std::string> Subjects() const {
    return {index_.digest(), amd_.manifest.digest(), arm_.manifest.digest()};
  }

  FakeRegistry reg_;     // the registry under test, hostile on request
  FakeRegistry victim_;  // another registry, which must not be confused with it
  testing::TestImage amd_, arm_;
  Blob index_;
  TestArtifact nfd_;
  Reference ref_;
};

// ---------------------------------------------------------------------------
// 1. Caps: layers, bytes and listings, per artifact and per selection.

// One 1 KiB layer listed a hundred times: the fetch stops at the per-artifact
// layer cap instead of keeping every copy (a thousand 1 MiB copies was 1 GB).
TEST_F(HostileRegistryTest, AnArtifactListingOneLayerManyTimesStopsAtTheLayerCap) {
  Blob layer{std::string(kNfdSpecLayerType), std::string(1024, 'x')};
  reg_.AddBlob(layer);
  Blob manifest = ArtifactWithLayers(index_, std::vector<const Blob*>(100, &layer));
  reg_.AddManifest(manifest);
  auto client = NewClient(Options());
  ReferrersClient referrers(client.get());
  auto art = referrers.FetchArtifact(ref_, DescriptorOf(manifest), {});
  ASSERT_FALSE(art.ok());
  EXPECT_EQ(art.status().code(), absl::StatusCode::kResourceExhausted) << art.status();
  EXPECT_THAT(
      std::string(art.status().message()),
      HasSubstr(absl::StrCat("more than ", kMaxArtifactLayers, " layers, the per-artifact cap")));
  EXPECT_LE(reg_.Count("/blobs/" + layer.digest()), kMaxArtifactLayers);
}

// Each cap, lowered, stops the fetch that would pass it and names itself.
TEST_F(HostileRegistryTest, ArtifactCapsStopWorkAndNameTheCap) {
  Blob layer{std::string(kNfdSpecLayerType), std::string(1024, 'y')};
  reg_.AddBlob(layer);
  struct Case {
    std::string name;
    std::function<void(ReferrersLimits&)> lower;
    std::vector<int> layers_per_artifact;  // fetched in order with one ReferrersClient
    std::string message;
  };
  size_t one_layer_manifest = ArtifactWithLayers(index_, {&layer}).bytes.size() + 20;
  const std::vector<Case> cases = {
      {"layers per artifact",
       [](ReferrersLimits& l) { l.max_artifact_layers = 2; },
       {3},
       "more than 2 layers, the per-artifact cap"},
      {"bytes per artifact",
       [](ReferrersLimits& l) { l.max_artifact_bytes = 4000; },
       {5},
       "the per-artifact cap of 4000 bytes"},
      {"layers per selection",
       [](ReferrersLimits& l) { l.max_selection_layers = 3; },
       {2, 2},
       "the per-selection cap of 3 layers is spent"},
      // Room for two artifacts of one layer, not a third.
      {"bytes per selection",
       [&](ReferrersLimits& l) {
         l.max_selection_artifact_bytes = 2 * (one_layer_manifest + 1024) + 100;
       },
       {1, 1, 1},
       "per-selection cap of"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<Blob> manifests;
    for (int n : c.layers_per_artifact) {
      // A distinct annotation per artifact: distinct digests.
      Blob m = ArtifactWithLayers(index_, std::vector<const Blob*>(n, &layer));
      m.bytes.insert(m.bytes.size() - 1,
                     absl::StrCat(",\"annotations\":{\"n\":\"", manifests.size(), "\"}"));
      reg_.AddManifest(m);
      manifests.push_back(m);
    }
    ReferrersLimits limits;
    c.lower(limits);
    auto client = NewClient(Options());
    ReferrersClient referrers(client.get(), absl::InfiniteFuture(), limits);
    absl::Status first_failure;
    size_t failed_at = manifests.size();
    for (size_t i = 0; i < manifests.size() && first_failure.ok(); ++i) {
      auto art = referrers.FetchArtifact(ref_, DescriptorOf(manifests[i]), {});
      if (!art.ok()) {
        first_failure = art.status();
        failed_at = i;
      }
    }
    EXPECT_EQ(failed_at, manifests.size() - 1) << "only the fetch that passes the cap fails";
    EXPECT_EQ(first_failure.code(), absl::StatusCode::kResourceExhausted) << first_failure;
    EXPECT_THAT(std::string(first_failure.message()), HasSubstr(c.message));
  }
}

// Sixteen pages of 600 KiB of annotations for one subject: the listing
// stops at the per-subject byte cap, and nothing is cached that a read of
// the cache would refuse (before: 16 pages kept, a 9.6 MiB record written).
TEST_F(HostileRegistryTest, AReferrersListingStopsAtItsByteCapAndCachesNothingUnreadable) {
  TempDir dir;
  auto cache = DiskCache::Open({dir.path(), int64_t{256} << 20});
  ASSERT_TRUE(cache.ok());
  const std::string subject = index_.digest();
  const std::string page = IndexOf({nfd_.manifest.Descriptor(
      absl::StrCat(",\"artifactType\":\"", kNfdArtifactType, "\",\"annotations\":{\"pad\":\"",
                   std::string(600 << 10, 'a'), "\"}"))});
  reg_.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (!absl::StrContains(r.target, "/referrers/")) return std::nullopt;
    return FakeResponse{
        200,
        {{"Content-Type", kIndexType},
         {"Link", absl::StrCat("</v2/team/app/referrers/", subject, "?last=more>; rel=\"next\"")}},
        page};
  });
  ClientOptions o = Options();
  o.cache = cache->get();
  auto client = NewClient(o);
  ReferrersClient referrers(client.get());
  auto lists = referrers.List(ref_, {subject}, {});
  ASSERT_EQ(lists.size(), 1u);
  EXPECT_EQ(lists[0].status.code(), absl::StatusCode::kResourceExhausted) << lists[0].status;
  EXPECT_THAT(
      std::string(lists[0].status.message()),
      HasSubstr(absl::StrCat("the per-subject cap of ", kMaxListingBytes, " listing bytes")));
  EXPECT_LE(reg_.Count("/referrers/"), static_cast<int>(kMaxListingBytes / page.size()) + 1);
  EXPECT_LE(LargestRecord(dir.path()), kMaxListingBytes);
}

// Pages and descriptors, per subject and per selection, lowered.
TEST_F(HostileRegistryTest, ListingCapsStopWorkAndNameTheCap) {
  const std::string descriptor =
      nfd_.manifest.Descriptor(absl::StrCat(",\"artifactType\":\"", kNfdArtifactType, "\""));
  struct Case {
    std::string name;
    std::function<void(ReferrersLimits&)> lower;
    int descriptors_per_page;
    bool endless;  // every page links to another; else page 1 links to a last page 2
    std::string message;
  };
  const std::vector<Case> cases = {
      {"pages per subject", [](ReferrersLimits& l) { l.max_listing_pages = 3; }, 1, true,
       "more than 3 pages, the per-subject cap"},
      {"descriptors per subject", [](ReferrersLimits& l) { l.max_listing_entries = 10; }, 11, false,
       "the per-subject cap of 10 descriptors"},
      {"pages per selection", [](ReferrersLimits& l) { l.max_selection_listing_pages = 4; }, 1,
       false, "the per-selection cap of 4 referrers pages"},
      {"bytes per selection",
       [&](ReferrersLimits& l) {
         l.max_selection_listing_bytes = 5 * IndexOf({descriptor}).size();
       },
       1, false, "per-selection cap of"},
      {"descriptors per selection",
       [](ReferrersLimits& l) { l.max_selection_listing_entries = 11; }, 2, false,
       "the per-selection cap of 11 descriptors"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string page = IndexOf(std::vector<std::string>(c.descriptors_per_page, descriptor));
    reg_.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
      size_t at = r.target.find("/referrers/");
      if (at == std::string::npos) return std::nullopt;
      FakeResponse resp{200, {{"Content-Type", kIndexType}}, page};
      std::string path = r.Path();
      if (c.endless || !absl::StrContains(r.target, "page=2")) {
        resp.headers.push_back({"Link", absl::StrCat("<", path, "?page=2>; rel=\"next\"")});
      }
      return resp;
    });
    ReferrersLimits limits;
    c.lower(limits);
    const int before = reg_.Count("/referrers/");
    auto client = NewClient(Options());
    ReferrersClient referrers(client.get(), absl::InfiniteFuture(), limits);
    auto lists = referrers.List(ref_, Subjects(), {});
    std::vector<std::string> failures;
    for (const auto& l : lists) {
      if (!l.status.ok()) {
        EXPECT_EQ(l.status.code(), absl::StatusCode::kResourceExhausted) << l.status;
        failures.push_back(std::string(l.status.message()));
      }
    }
    ASSERT_FALSE(failures.empty());
    EXPECT_THAT(failures[0], HasSubstr(c.message));
    // Bounded work: no subject fetched more than the per-subject page cap.
    EXPECT_LE(reg_.Count("/referrers/") - before, 3 * limits.max_listing_pages);
  }
}

// The listing written to the cache is our own JSON, which may be longer
// than what the registry sent (here: a mediaType per descriptor). It is
// written only when a read takes it back: the write cap is the read cap.
TEST_F(HostileRegistryTest, ACachedListingIsNeverLargerThanAReadAccepts) {
  TempDir dir;
  auto cache = DiskCache::Open({dir.path(), int64_t{1} << 20});
  ASSERT_TRUE(cache.ok());
  ReferrersLimits limits;
  limits.max_listing_bytes = 4096;
  const std::string bare =
      absl::StrCat("{\"digest\":\"", nfd_.manifest.digest(), "\",\"size\":9,\"artifactType\":\"",
                   kNfdArtifactType, "\"}");
  const ArtifactDescriptor parsed{"", nfd_.manifest.digest(), 9, std::string(kNfdArtifactType), {}};
  size_t n = 1;
  while (ReferrersIndexJson(std::vector<ArtifactDescriptor>(n, parsed)).size() <=
         limits.max_listing_bytes) {
    ++n;
  }
  const std::string page = IndexOf(std::vector<std::string>(n, bare));
  ASSERT_LE(page.size(), limits.max_listing_bytes) << "the registry's page fits the cap";
  reg_.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (!absl::StrContains(r.target, "/referrers/")) return std::nullopt;
    return FakeResponse{200, {{"Content-Type", kIndexType}}, page};
  });
  ClientOptions o = Options();
  o.cache = cache->get();
  auto client = NewClient(o);
  ReferrersClient referrers(client.get(), absl::InfiniteFuture(), limits);
  auto lists = referrers.List(ref_, {index_.digest()}, {});
  ASSERT_TRUE(lists[0].status.ok()) << lists[0].status;
  EXPECT_EQ(lists[0].artifacts.size(), n);
  // The record would have been key + header + more than the cap: not written.
  EXPECT_LE(LargestRecord(dir.path()), limits.max_listing_bytes);
}

// ---------------------------------------------------------------------------
// 2. Cross-tenant: what one registry said stays that registry's.

// An index fetched from one registry sits in the cache; naming its digest at
// another registry (where it does not exist) asks that registry.
TEST_F(HostileRegistryTest, ADigestOneRegistryServedNeverAnswersForAnother) {
  FakeRegistry victim;  // has nothing
  TempDir dir;
  auto cache = DiskCache::Open({dir.path(), int64_t{1} << 20});
  ASSERT_TRUE(cache.ok());
  ClientOptions o = Options();
  o.cache = cache->get();
  auto client = NewClient(o);
  Reference attacker_ref = ref_;
  attacker_ref.digest = index_.digest();
  ASSERT_TRUE(client->Resolve(attacker_ref).ok());
  ASSERT_TRUE(client->FetchBlob(ref_, nfd_.layer.digest()).ok());

  struct Case {
    std::string name;
    std::string reference;
    FakeRegistry* registry;
  };
  const std::vector<Case> cases = {
      {"another registry", victim.host() + "/doesnotexist", &victim},
      {"another repository", reg_.host() + "/team/other", &reg_},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto ref = ParseReference(absl::StrCat(c.reference, "@", index_.digest()));
    ASSERT_TRUE(ref.ok());
    int manifests_before = c.registry->Count("/manifests/" + index_.digest());
    int blobs_before = c.registry->Count("/blobs/" + nfd_.layer.digest());
    auto m = client->Resolve(*ref);
    auto b = client->FetchBlob(*ref, nfd_.layer.digest());
    EXPECT_EQ(c.registry->Count("/manifests/" + index_.digest()), manifests_before + 1)
        << "the registry named is asked";
    EXPECT_EQ(c.registry->Count("/blobs/" + nfd_.layer.digest()), blobs_before + 1);
    if (c.registry == &victim) {
      EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound) << m.status();
      EXPECT_EQ(b.status().code(), absl::StatusCode::kNotFound) << b.status();
    }
  }
}

// A 404 from the referrers API about a repository that does not exist says
// nothing about the registry's other repositories, and is not remembered
// for good.
TEST_F(HostileRegistryTest, AReferrersAnswerAboutOneRepositoryIsRememberedForThatOneOnly) {
  victim_.set_fault([](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (absl::StartsWith(r.target, "/v2/doesnotexist/")) {
      return FakeResponse{404, {}, R"({"errors":[{"code":"NAME_UNKNOWN"}]})"};
    }
    return std::nullopt;
  });
  using Mode = RegistryClient::ReferrersMode;
  const Reference missing = Ref(victim_, "doesnotexist:v1");
  const Reference real = Ref(victim_, "team/app:v1");
  auto client = NewClient(Options());
  {
    ReferrersClient referrers(client.get());
    auto none = referrers.List(missing, {index_.digest()}, {});
    ASSERT_TRUE(none[0].status.ok()) << none[0].status;
    EXPECT_TRUE(none[0].artifacts.empty());
  }
  EXPECT_EQ(client->referrers_mode(missing), Mode::kTagSchema);
  EXPECT_EQ(client->referrers_mode(real), Mode::kUnknown);
  ReferrersClient referrers(client.get());
  auto lists = referrers.List(real, {index_.digest()}, {});
  ASSERT_TRUE(lists[0].status.ok()) << lists[0].status;
  EXPECT_FALSE(lists[0].via_tag_schema);
  ASSERT_EQ(lists[0].artifacts.size(), 1u);
  EXPECT_EQ(lists[0].artifacts[0].digest, nfd_.manifest.digest());
  EXPECT_EQ(client->referrers_mode(real), Mode::kApi);

  // Remembered for referrers_ttl at most: with none, not at all.
  ClientOptions o = Options();
  o.referrers_ttl = absl::ZeroDuration();
  auto forgetful = NewClient(o);
  ReferrersClient again(forgetful.get());
  ASSERT_TRUE(again.List(missing, {index_.digest()}, {})[0].status.ok());
  EXPECT_EQ(forgetful->referrers_mode(missing), Mode::kUnknown);
}

// ---------------------------------------------------------------------------
// 3. Credentials go to the registry's own realm only.

// The registry (anonymous here; the caller has credentials for it) redirects
// a blob to another host, which answers 401 naming its own token service:
// neither the caller's password nor its identity token goes there, and
// nothing is sent to that host but the bare GET.
TEST_F(HostileRegistryTest, ARedirectTargetsChallengeGetsNoCredentials) {
  std::string storage_url;
  FakeServer storage([&](const FakeRequest& r) {
    if (r.Path() == "/token") return FakeResponse{200, {}, R"({"token":"STOLEN"})"};
    if (r.Header("authorization") == "Bearer STOLEN") return FakeResponse{200, {}, "nfd: spec"};
    return FakeResponse{
        401, {{"WWW-Authenticate", absl::StrCat("Bearer realm=\"", storage_url, "/token\"")}}, ""};
  });
  storage_url = storage.url();
  const std::string layer_path = "/blobs/" + nfd_.layer.digest();
  reg_.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (absl::StrContains(r.target, layer_path)) {
      return FakeResponse{307, {{"Location", storage_url + "/bucket/object"}}, ""};
    }
    return std::nullopt;
  });
  struct Case {
    std::string name;
    Credentials creds;
    std::string secret;
  };
  Credentials refresh;
  refresh.identity_token = "R1";
  const std::vector<Case> cases = {
      {"username and password", {"alice", "pw", "", ""}, "pw"},
      {"identity token", refresh, "R1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    size_t seen_before = storage.requests().size();
    auto client = NewClient(Options());
    auto blob = client->FetchBlob(ref_, nfd_.layer.digest(), 0, &c.creds);
    ASSERT_FALSE(blob.ok()) << "a 401 from a redirect target fails the fetch";
    EXPECT_EQ(blob.status().code(), absl::StatusCode::kUnauthenticated) << blob.status();
    EXPECT_THAT(std::string(blob.status().message()), HasSubstr("after a redirect"));
    auto seen = storage.requests();
    ASSERT_EQ(seen.size(), seen_before + 1) << "one GET of the object, no token request";
    const FakeRequest& r = seen.back();
    EXPECT_EQ(r.Path(), "/bucket/object");
    EXPECT_EQ(r.Header("authorization"), "");
    EXPECT_FALSE(absl::StrContains(r.target + r.body, c.secret));
  }
}

// Realms a registry may not name: other schemes, and link-local addresses
// however written. The refusals happen before any request to the realm, and
// their messages escape the registry's text.
TEST_F(HostileRegistryTest, BearerRealmsThatAreRefused) {
  struct Case {
    std::string realm;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"ftp://127.0.0.1/token", absl::StatusCode::kUnauthenticated, "not an http(s) URL"},
      {"file:///etc/passwd", absl::StatusCode::kUnauthenticated, "not an http(s) URL"},
      {"ftp://\x1b]0;owned\x07/", absl::StatusCode::kUnauthenticated, "\\x1b]0;owned\\x07"},
      {"http://169.254.169.254/latest/meta-data", absl::StatusCode::kPermissionDenied,
       "link-local"},
      {"http://169.254.0.1:8080/token", absl::StatusCode::kPermissionDenied, "link-local"},
      {"http://[fe80::1]/token", absl::StatusCode::kPermissionDenied, "link-local"},
      {"http://[::ffff:169.254.169.254]/token", absl::StatusCode::kPermissionDenied, "link-local"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::CHexEscape(c.realm));
    reg_.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
      if (!absl::StrContains(r.target, "/manifests/")) return std::nullopt;
      return FakeResponse{
          401, {{"WWW-Authenticate", absl::StrCat("Bearer realm=\"", c.realm, "\"")}}, ""};
    });
    auto client = NewClient(Options(absl::Seconds(2)));
    Credentials alice{"alice", "pw", "", ""};
    auto m = client->Resolve(ref_, &alice);
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), c.code) << m.status();
    EXPECT_THAT(std::string(m.status().message()), HasSubstr(c.message));
    EXPECT_FALSE(HasUnsafeByte(m.status().message())) << m.status();
    EXPECT_EQ(client->round_trips(), 1) << "nothing sent to the realm";
  }
}

TEST(LinkLocalTest, AddressLiterals) {
  const std::pair<const char*, bool> cases[] = {
      {"169.254.169.254", true},
      {"169.254.0.1", true},
      {"fe80::1", true},
      {"FE80::abcd", true},
      {"febf::1", true},
      {"fe80::1%eth0", true},
      {"::ffff:169.254.1.1", true},
      {"169.253.255.255", false},
      {"169.255.0.1", false},
      {"fec0::1", false},
      {"127.0.0.1", false},
      {"::1", false},
      {"metadata.google.internal", false},  // a name: checked when it resolves
  };
  for (const auto& [host, link_local] : cases) {
    EXPECT_EQ(IsLinkLocalAddress(host), link_local) << host;
  }
}

TEST(LinkLocalTest, UrlHosts) {
  const std::pair<const char*, const char*> cases[] = {
      {"https://Auth.Example.com/token?x=1", "auth.example.com"},
      {"http://169.254.169.254:80/", "169.254.169.254"},
      {"http://[fe80::1]:8080/x", "fe80::1"},
      {"http://user@10.0.0.1/x", "10.0.0.1"},
      {"not a url", ""},
  };
  for (const auto& [url, host] : cases) EXPECT_EQ(UrlHost(url), host) << url;
}

// The transport refuses the address a name resolves to, however the name
// spells it (libcurl reads decimal and hex IPv4 forms). Port 9 is never
// reached: the refusal comes before the connection.
TEST(LinkLocalTest, TheTransportRefusesLinkLocalAddressesHoweverSpelled) {
  HttpTransport transport;
  for (const char* url : {"http://169.254.169.254:9/x", "http://2852039166:9/x",
                          "http://0xa9.0xfe.0xa9.0xfe:9/x", "http://[fe80::1]:9/x"}) {
    SCOPED_TRACE(url);
    HttpRequest req;
    req.url = url;
    req.refuse_link_local = true;
    req.connect_timeout = absl::Milliseconds(500);
    req.total_timeout = absl::Seconds(1);
    auto resp = transport.Perform(req);
    ASSERT_FALSE(resp.ok());
    EXPECT_EQ(resp.status().code(), absl::StatusCode::kPermissionDenied) << resp.status();
  }
}

// ---------------------------------------------------------------------------
// 4. Time: one deadline per request; the caller's deadline; slots.

// Three slow hops (redirects, or a 401, the token and the retry), each well
// inside request_timeout: together they are past it, and the request ends
// at it.
TEST_F(HostileRegistryTest, OneDeadlineCoversEveryHopAndTheTokenFetch) {
  const absl::Duration hop = absl::Milliseconds(400);
  const std::string layer_path = "/blobs/" + nfd_.layer.digest();
  struct Case {
    std::string name;
    std::function<std::optional<FakeResponse>(const FakeRequest&)> fault;
  };
  // The faults hold copies of what they read: the client gives up at its
  // deadline while the server is still in a hop, and that hop ends after
  // this test body (and its locals) have gone.
  const std::vector<Case> cases = {
      {"redirect hops",
       [layer_path, hop](const FakeRequest& r) -> std::optional<FakeResponse> {
         FakeResponse slow{307, {}, ""};
         slow.delay = hop;
         if (absl::StrContains(r.target, layer_path)) {
           slow.headers = {{"Location", "/hop1"}};
         } else if (r.Path() == "/hop1") {
           slow.headers = {{"Location", "/hop2"}};
         } else if (r.Path() == "/hop2") {
           slow = {200, {}, "nfd: spec", hop};
         } else {
           return std::nullopt;
         }
         return slow;
       }},
      {"401, token, retry",
       [layer_path, hop](const FakeRequest& r) -> std::optional<FakeResponse> {
         if (absl::StrContains(r.target, layer_path) || r.Path() == "/token") {
           absl::SleepFor(hop);  // then the registry answers as it would
         }
         return std::nullopt;
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    reg_.set_auth(c.name == "401, token, retry" ? FakeRegistry::Auth::kBearer
                                                : FakeRegistry::Auth::kNone);
    reg_.set_fault(c.fault);
    auto client = NewClient(Options(absl::Seconds(1)));
    Credentials alice{"alice", "pw", "", ""};
    absl::Time start = absl::Now();
    auto blob = client->FetchBlob(ref_, nfd_.layer.digest(), 0, &alice);
    absl::Duration took = absl::Now() - start;
    ASSERT_FALSE(blob.ok()) << "three hops of 400 ms do not fit in 1 s";
    EXPECT_EQ(blob.status().code(), absl::StatusCode::kDeadlineExceeded) << blob.status();
    EXPECT_LT(took, absl::Milliseconds(1600));
  }
}

// The caller's deadline ends every request path, well before request_timeout.
TEST_F(HostileRegistryTest, TheCallersDeadlineEndsEveryRequestPath) {
  reg_.set_fault([](const FakeRequest&) -> std::optional<FakeResponse> {
    return FakeResponse{200, {}, "late", absl::Seconds(3)};
  });
  auto client = NewClient(Options(absl::Seconds(10)));
  Reference tagged = ref_;
  struct Case {
    std::string name;
    std::function<absl::Status(absl::Time)> call;
  };
  const std::vector<Case> cases = {
      {"Resolve", [&](absl::Time d) { return client->Resolve(tagged, nullptr, d).status(); }},
      {"FetchManifest",
       [&](absl::Time d) {
         return client->FetchManifest(ref_, amd_.manifest.digest(), nullptr, d).status();
       }},
      {"FetchBlob",
       [&](absl::Time d) {
         return client->FetchBlob(ref_, nfd_.layer.digest(), 0, nullptr, d).status();
       }},
      {"Get",
       [&](absl::Time d) {
         return client->Get(ref_, "team/app/tags/list", "", 1024, nullptr, d).status();
       }},
      {"PushBlob", [&](absl::Time d) { return client->PushBlob(ref_, "x", nullptr, d).status(); }},
      {"ReferrersClient",
       [&](absl::Time d) {
         ReferrersClient referrers(client.get(), d);
         return referrers.List(ref_, {index_.digest()}, {})[0].status;
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::Time start = absl::Now();
    absl::Status s = c.call(start + absl::Milliseconds(300));
    absl::Duration took = absl::Now() - start;
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    EXPECT_LT(took, absl::Milliseconds(1500));
  }
}

// A request waiting for one of the registry's slots gives up at its deadline.
TEST_F(HostileRegistryTest, WaitingForASlotEndsAtTheDeadline) {
  absl::Notification entered, release;
  reg_.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (absl::StrContains(r.target, "/blobs/")) {
      entered.Notify();
      release.WaitForNotificationWithTimeout(absl::Seconds(5));
    }
    return std::nullopt;
  });
  ClientOptions o = Options();
  o.max_concurrent_per_registry = 1;
  auto client = NewClient(o);
  std::thread holder([&] { (void)client->FetchBlob(ref_, nfd_.layer.digest()); });
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(5)));
  absl::Time start = absl::Now();
  auto m =
      client->FetchManifest(ref_, amd_.manifest.digest(), nullptr, start + absl::Milliseconds(200));
  absl::Duration took = absl::Now() - start;
  release.Notify();
  holder.join();
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDeadlineExceeded) << m.status();
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("request slots of " + reg_.host()));
  EXPECT_LT(took, absl::Milliseconds(1500));
}

// Two registries behind one mirror: the one whose requests hang there does
// not take the slots the other needs.
TEST_F(HostileRegistryTest, OneRegistryCannotTakeAnothersSlotsAtASharedMirror) {
  FakeRegistry mirror;
  mirror.AddManifest(amd_.manifest);
  const std::string stuck_ns =
      absl::StrCat("ns=", absl::StrReplaceAll(reg_.host(), {{":", "%3A"}}));
  absl::Mutex mu;
  int stuck = 0;
  absl::Notification release;
  mirror.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (!absl::StrContains(r.target, stuck_ns)) return std::nullopt;
    {
      absl::MutexLock lock(&mu);
      ++stuck;
    }
    release.WaitForNotificationWithTimeout(absl::Seconds(5));
    return std::nullopt;
  });
  TempDir hosts;
  for (const FakeRegistry* r : {&reg_, &victim_}) {
    std::string dir = absl::StrCat(hosts.path(), "/", r->host());
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/hosts.toml") << "server = \"" << r->url() << "\"\n[host.\""
                                       << mirror.url() << "\"]\n  capabilities = [\"pull\"]\n";
  }
  ClientOptions o = Options();
  o.hosts_dir = hosts.path();
  o.max_concurrent_per_registry = 2;
  auto client = NewClient(o);
  std::vector<std::thread> hogs;
  for (int i = 0; i < 2; ++i) {
    hogs.emplace_back([&] { (void)client->FetchManifest(ref_, amd_.manifest.digest()); });
  }
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(
                                        +[](int* n) { return *n >= 2; }, &stuck),
                                    absl::Seconds(5)));
  }
  const Reference healthy = Ref(victim_, "team/app:v1");
  const absl::Time start = absl::Now();
  auto m =
      client->FetchManifest(healthy, amd_.manifest.digest(), nullptr, start + absl::Seconds(2));
  const absl::Duration took = absl::Now() - start;
  release.Notify();
  for (std::thread& t : hogs) t.join();
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_LT(took, absl::Seconds(1)) << "it did not wait for the other registry's requests";
  EXPECT_EQ(victim_.Count("/manifests/"), 0) << "the mirror had it";
}

// ---------------------------------------------------------------------------
// 5. Links and text a registry chose.

// A next page must be this listing on this host; anything else is refused,
// never followed.
TEST_F(HostileRegistryTest, AReferrersNextLinkMustNameTheSameListing) {
  const std::string subject = index_.digest();
  const std::string base = "/v2/team/app/referrers/" + subject;
  struct Case {
    std::string link;
    bool followed;
  };
  const std::vector<Case> cases = {
      {"<" + base + "?page=2>; rel=\"next\"", true},
      {"<?page=2>; rel=next", true},
      {"<{origin}" + base + "?page=2>; rel=\"next\"", true},
      {"<" + base + "?page=0>; rel=\"prev\", <" + base + "?page=2>; rel=\"next\"", true},
      {"<http://evil.example" + base + "?page=2>; rel=\"next\"", false},
      {"</v2/team/other/referrers/" + subject + "?page=2>; rel=\"next\"", false},
      {"</v2/team/app/manifests/v1?page=2>; rel=\"next\"", false},
      {"<" + base + "/../../manifests/v1?page=2>; rel=\"next\"", false},
      {"</token?page=2>; rel=\"next\"", false},
      {"<" + base + "?page=2>; rel=\"prev\", </elsewhere?page=2>; rel=\"next\"", false},
  };
  const std::string page = IndexOf(
      {nfd_.manifest.Descriptor(absl::StrCat(",\"artifactType\":\"", kNfdArtifactType, "\""))});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.link);
    FakeRegistry reg;
    const std::string link = absl::StrReplaceAll(c.link, {{"{origin}", reg.url()}});
    reg.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
      FakeResponse resp{200, {{"Content-Type", kIndexType}}, page};
      if (!absl::StrContains(r.target, "page=2")) resp.headers.push_back({"Link", link});
      return resp;
    });
    auto client = NewClient(Options());
    ReferrersClient referrers(client.get());
    auto lists = referrers.List(Ref(reg, "team/app:v1"), {subject}, {});
    // The tag schema, asked alongside on a repository not yet known, is
    // not part of the listing.
    size_t listing_requests = 0;
    for (const FakeRequest& r : reg.requests()) {
      if (absl::StrContains(r.target, "/referrers/")) ++listing_requests;
    }
    if (c.followed) {
      ASSERT_TRUE(lists[0].status.ok()) << lists[0].status;
      EXPECT_EQ(lists[0].artifacts.size(), 2u);
      EXPECT_EQ(listing_requests, 2u);
    } else {
      EXPECT_EQ(lists[0].status.code(), absl::StatusCode::kInvalidArgument) << lists[0].status;
      EXPECT_THAT(std::string(lists[0].status.message()), HasSubstr("refusing Link"));
      EXPECT_EQ(listing_requests, 1u) << "nothing followed";
    }
  }
}

// Escape sequences in an error code or a redirect target reach no message raw.
TEST_F(HostileRegistryTest, RegistryTextIsEscapedInMessages) {
  const std::string code = "\\u001b[2J\\u001b]0;owned\\u0007\\u009b31m";
  reg_.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (absl::StrContains(r.target, "/manifests/")) {
      return FakeResponse{404, {}, absl::StrCat(R"({"errors":[{"code":")", code, R"("}]})")};
    }
    if (absl::StrContains(r.target, "/blobs/")) {
      return FakeResponse{307, {{"Location", "http://127.0.0.1:1/\x1b[31mred\x1b[0m"}}, ""};
    }
    return std::nullopt;
  });
  auto client = NewClient(Options());
  auto m = client->FetchManifest(ref_, amd_.manifest.digest());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(HasUnsafeByte(m.status().message())) << absl::CHexEscape(m.status().message());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("\\x1b[2J"));
  auto b = client->FetchBlob(ref_, nfd_.layer.digest());
  ASSERT_FALSE(b.ok());
  EXPECT_FALSE(HasUnsafeByte(b.status().message())) << absl::CHexEscape(b.status().message());
}

TEST(EscapeRemoteTextTest, Table) {
  const std::pair<std::string, std::string> cases[] = {
      {"MANIFEST_UNKNOWN", "MANIFEST_UNKNOWN"},
      {"a\x1b[31mb", "a\\x1b[31mb"},
      {"bell\x07", "bell\\x07"},
      {"line\nbreak", "line\\nbreak"},
      {"csi \xc2\x9b", "csi \\xc2\\x9b"},
      {"del\x7f", "del\\x7f"},
      {std::string(300, 'a'), std::string(256, 'a') + "..."},
  };
  for (const auto& [in, out] : cases) {
    EXPECT_EQ(EscapeRemoteText(in), out) << absl::CHexEscape(in);
  }
}

}  // namespace
}  // namespace imgsel::registry
