// Against Debian's docker-registry: no referrers API there, so the tag
// schema is what works, for real.
#include "tests/registry/real_registry.h"

#include <unistd.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "registry/attach.h"
#include "registry/cache.h"
#include "registry/client.h"
#include "registry/referrers.h"
#include "tests/registry/test_images.h"

namespace imgsel::registry {
namespace {

using testing::MakeImage;
using testing::MakeIndex;
using testing::RealRegistry;
using testing::TestImage;

class RealRegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string why;
    registry_ = RealRegistry::Start(&why).release();
    if (registry_ == nullptr) skip_reason_ = new std::string(why);
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }
  void SetUp() override {
    if (registry_ == nullptr && getenv("IMGSEL_REQUIRE_INTEGRATION") != nullptr) {
      FAIL() << *skip_reason_;
    }
    if (registry_ == nullptr) GTEST_SKIP() << *skip_reason_;
    char tmpl[] = "/tmp/imgsel-regcache-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    cache_dir_ = tmpl;
  }
  void TearDown() override {
    if (!cache_dir_.empty()) std::filesystem::remove_all(cache_dir_);
  }

  // A client as a fresh process would have it: its own cache handle and counters.
  std::unique_ptr<RegistryClient> NewClient(std::unique_ptr<DiskCache>& cache) {
    auto c = DiskCache::Open({cache_dir_, 64 << 20});
    EXPECT_TRUE(c.ok());
    cache = std::move(*c);
    ClientOptions o;
    o.plain_http = true;
    o.use_docker_config = false;
    o.cache = cache.get();
    o.request_timeout = absl::Seconds(20);
    auto client = RegistryClient::Create(o);
    EXPECT_TRUE(client.ok());
    return std::move(*client);
  }

  Reference Ref(const std::string& repo_and_tag) {
    auto ref = ParseReference(registry_->host() + "/" + repo_and_tag);
    EXPECT_TRUE(ref.ok()) << ref.status();
    return *ref;
  }

  // Pushes a two-entry index with the client's own push; returns the index blob.
  testing::Blob PushIndex(RegistryClient& client, const Reference& ref, TestImage& amd,
                          TestImage& arm) {
    for (TestImage* img : {&amd, &arm}) {
      EXPECT_TRUE(client.PushBlob(ref, img->config.bytes).ok());
      EXPECT_TRUE(client.PushBlob(ref, img->layer.bytes).ok());
      auto d = client.PushManifest(ref, img->manifest.media_type, img->manifest.bytes);
      EXPECT_TRUE(d.ok()) << d.status();
      EXPECT_EQ(*d, img->manifest.digest());
    }
    testing::Blob index = MakeIndex({{"amd64", &amd}, {"arm64", &arm}});
    auto d = client.PushManifest(ref, index.media_type, index.bytes, ref.tag);
    EXPECT_TRUE(d.ok()) << d.status();
    return index;
  }

  static RealRegistry* registry_;
  static std::string* skip_reason_;
  std::string cache_dir_;
};

RealRegistry* RealRegistryTest::registry_ = nullptr;
std::string* RealRegistryTest::skip_reason_ = nullptr;

TEST_F(RealRegistryTest, ResolveAttachListFetchThenWarmCacheCostsNoRequest) {
  std::unique_ptr<DiskCache> cache;
  auto client = NewClient(cache);
  Reference ref = Ref("team/app:v1");
  TestImage amd = MakeImage("amd64"), arm = MakeImage("arm64");
  testing::Blob index = PushIndex(*client, ref, amd, arm);

  auto resolved = client->Resolve(ref);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->digest, index.digest());
  EXPECT_EQ(resolved->media_type, "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(resolved->bytes, index.bytes);

  const std::string spec = "version: v1alpha1\ncompatibilities:\n- rules: []\n";
  AttachOptions opts;
  opts.title = "spec.yaml";
  opts.created = absl::FromUnixSeconds(1700000000);
  auto attached = Attach(*client, ref, spec, opts);
  ASSERT_TRUE(attached.ok()) << attached.status();
  EXPECT_TRUE(attached->via_tag_schema);  // distribution 2.8 has no referrers API
  EXPECT_EQ(attached->subject_digest, index.digest());

  std::vector<std::string> subjects = {index.digest(), amd.manifest.digest(),
                                       arm.manifest.digest()};
  std::vector<std::string> types = {std::string(kNfdArtifactType)};
  {
    std::unique_ptr<DiskCache> cold_cache;
    auto cold = NewClient(cold_cache);
    ReferrersClient referrers(cold.get());
    auto lists = referrers.List(ref, subjects, types);
    ASSERT_EQ(lists.size(), 3u);
    for (const auto& l : lists) ASSERT_TRUE(l.status.ok()) << l.subject << ": " << l.status;
    EXPECT_TRUE(lists[0].via_tag_schema);
    ASSERT_EQ(lists[0].artifacts.size(), 1u);
    EXPECT_EQ(lists[0].artifacts[0].digest, attached->manifest_digest);
    EXPECT_EQ(lists[0].artifacts[0].artifact_type, kNfdArtifactType);
    EXPECT_TRUE(lists[1].artifacts.empty());
    EXPECT_TRUE(lists[2].artifacts.empty());
    EXPECT_EQ(cold->referrers_mode(ref), RegistryClient::ReferrersMode::kTagSchema);

    auto artifact =
        referrers.FetchArtifact(ref, lists[0].artifacts[0], {std::string(kNfdSpecLayerType)});
    ASSERT_TRUE(artifact.ok()) << artifact.status();
    EXPECT_EQ(artifact->subject, index.digest());
    ASSERT_EQ(artifact->layers.size(), 1u);
    EXPECT_EQ(artifact->layers[0].bytes, spec);
    bool has_created = false;
    for (const auto& [k, v] : artifact->annotations) {
      if (k == "org.opencontainers.image.created") has_created = (v == "2023-11-14T22:13:20Z");
    }
    EXPECT_TRUE(has_created);
  }

  // A restarted process with the same cache: the same lookup by digest makes
  // no request at all.
  std::unique_ptr<DiskCache> warm_cache;
  auto warm = NewClient(warm_cache);
  Reference pinned = ref;
  pinned.digest = index.digest();
  ASSERT_TRUE(warm->Resolve(pinned).ok());
  ReferrersClient referrers(warm.get());
  auto lists = referrers.List(ref, subjects, types);
  ASSERT_EQ(lists[0].artifacts.size(), 1u);
  EXPECT_TRUE(lists[0].from_cache);
  EXPECT_TRUE(lists[1].from_cache);  // the negative answers too
  auto artifact =
      referrers.FetchArtifact(ref, lists[0].artifacts[0], {std::string(kNfdSpecLayerType)});
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  EXPECT_EQ(artifact->layers[0].bytes, spec);
  EXPECT_EQ(warm->round_trips(), 0);
  // A tag is always asked again (tags move): one GET of the tag.
  ASSERT_TRUE(warm->Resolve(ref).ok());
  EXPECT_EQ(warm->round_trips(), 1);
}

TEST_F(RealRegistryTest, SecondAttachAppendsAndNewestWins) {
  std::unique_ptr<DiskCache> cache;
  auto client = NewClient(cache);
  Reference ref = Ref("team/two:v1");
  TestImage amd = MakeImage("amd64"), arm = MakeImage("arm64");
  testing::Blob index = PushIndex(*client, ref, amd, arm);

  AttachOptions old_opts;
  old_opts.created = absl::FromUnixSeconds(1600000000);
  auto first = Attach(*client, ref, "old spec", old_opts);
  ASSERT_TRUE(first.ok()) << first.status();
  AttachOptions new_opts;
  new_opts.created = absl::FromUnixSeconds(1700000000);
  new_opts.annotations = {{"com.example.note", "second"}};
  auto second = Attach(*client, ref, "new spec", new_opts);
  ASSERT_TRUE(second.ok()) << second.status();
  // Attaching the very same manifest again does not duplicate it.
  ASSERT_TRUE(Attach(*client, ref, "new spec", new_opts).ok());

  ReferrersClient referrers(client.get());
  auto lists = referrers.List(ref, {index.digest()}, {});
  ASSERT_TRUE(lists[0].status.ok()) << lists[0].status;
  ASSERT_EQ(lists[0].artifacts.size(), 2u);
  // The second attach is the newer (its created annotation is later).
  std::vector<ArtifactManifest> manifests;
  for (const ArtifactDescriptor& d : lists[0].artifacts) {
    auto m = referrers.FetchArtifactManifest(ref, d);
    ASSERT_TRUE(m.ok()) << m.status();
    manifests.push_back(*std::move(m));
  }
  const std::vector<size_t> newest = NewestOfEachReadableKind(manifests);
  ASSERT_EQ(newest.size(), 1u);
  EXPECT_EQ(manifests[newest[0]].digest, second->manifest_digest);
  auto other_type =
      referrers.List(ref, {amd.manifest.digest()}, {"application/vnd.oci.image-compatibility.v1"});
  EXPECT_TRUE(other_type[0].status.ok());
  EXPECT_TRUE(other_type[0].artifacts.empty());
}

TEST_F(RealRegistryTest, MissingTagIsNotFoundNamingTheReference) {
  std::unique_ptr<DiskCache> cache;
  auto client = NewClient(cache);
  auto r = client->Resolve(Ref("team/absent:nope"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(r.status().message()).find("team/absent:nope"), std::string::npos)
      << r.status();
}

}  // namespace
}  // namespace imgsel::registry
