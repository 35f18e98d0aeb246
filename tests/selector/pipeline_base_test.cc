// Base images through the selection pipeline, against an in-memory
// registry: an entry's manifest names its base
// (org.opencontainers.image.base.name/.digest) and the base's compatibility
// artifacts apply to the entry, requirements and weights added; chains are
// bounded and cycles end; a base that cannot be read follows [compat]
// on_error; the explanation names the base; documents are read once.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "matcher/features.h"
#include "oci/media_types.h"
#include "selector/pipeline.h"
#include "tests/registry/fake_registry.h"
#include "tests/selector/specs.h"

namespace imgsel {
namespace {

using registry::testing::Blob;
using registry::testing::FakeRegistry;
using registry::testing::MakeArtifact;
using registry::testing::TestArtifact;
using ::testing::HasSubstr;
using testing::KernelAtLeast5Spec;
using testing::KernelSixV3Host;
using testing::kNeedsKernel7Spec;

// An image manifest of its own content `name`, with `annotations` (a JSON
// object's members, may be empty).
Blob ImageManifest(const std::string& name, const std::string& annotations = "") {
  const Blob config{"application/vnd.oci.image.config.v1+json",
                    absl::StrCat(R"({"architecture":"amd64","os":"linux","name":")", name,
                                 R"(","rootfs":{"type":"layers","diff_ids":[]}})")};
  const Blob layer{"application/vnd.oci.image.layer.v1.tar", "layer of " + name};
  return {
      "application/vnd.oci.image.manifest.v1+json",
      absl::StrCat(
          R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)",
          R"("config":)", config.Descriptor(), R"(,"layers":[)", layer.Descriptor(), "]",
          annotations.empty() ? "" : absl::StrCat(R"(,"annotations":{)", annotations, "}"), "}")};
}

Blob Index(const std::vector<std::pair<std::string, const Blob*>>& entries) {
  std::vector<std::string> descs;
  for (const auto& [platform, manifest] : entries) descs.push_back(manifest->Descriptor(platform));
  return {
      "application/vnd.oci.image.index.v1+json",
      absl::StrCat(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)",
                   R"("manifests":[)", absl::StrJoin(descs, ","), "]}")};
}

constexpr char kAmd64[] = R"(,"platform":{"os":"linux","architecture":"amd64"})";
constexpr char kArm64[] = R"(,"platform":{"os":"linux","architecture":"arm64"})";

class PipelineBaseTest : public ::testing::Test {
 protected:
  // "org.opencontainers.image.base.name":..., "...base.digest":... naming
  // `base` in repository `repository` of the fake registry.
  std::string BaseOf(const Blob& base, const std::string& repository = "lib/base") const {
    return absl::StrCat(R"("org.opencontainers.image.base.name":")", registry_->host(), "/",
                        repository, R"(:1","org.opencontainers.image.base.digest":")",
                        base.digest(), R"(")");
  }
  std::string BaseName(const Blob& base, const std::string& repository = "lib/base") const {
    return absl::StrCat(registry_->host(), "/", repository, "@", base.digest());
  }

  // The image team/app:v1: entry `derived` (amd64, built on what its
  // annotations say) first, then `plain` (amd64, no base): without
  // artifacts the derived entry wins, as the first match.
  void Publish(const std::string& derived_annotations) {
    derived_ = ImageManifest("derived", derived_annotations);
    plain_ = ImageManifest("plain");
    index_ = Index({{kAmd64, &derived_}, {kAmd64, &plain_}});
    registry_->AddManifest(derived_);
    registry_->AddManifest(plain_);
    registry_->AddManifest(index_, "v1");
  }

  void Attach(const Blob& subject, const std::string& spec) {
    TestArtifact a = MakeArtifact(subject, std::string(kNfdArtifactType), spec,
                                  std::string(kNfdSpecLayerType), "2026-01-01T00:00:00Z");
    registry_->AddManifest(a.manifest);
    registry_->AddBlob(a.layer);
    registry_->AddBlob(a.config);
  }

  std::unique_ptr<SelectionPipeline> Pipeline(bool fallback_on_error = true,
                                              bool base_images = true) {
    Config config = DefaultConfig();
    config.compat.fallback_on_error = fallback_on_error;
    config.compat.base_images = base_images;
    config.registry.request_timeout = absl::Seconds(5);
    auto p = SelectionPipeline::Create(config, KernelSixV3Host());
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  absl::StatusOr<Selection> Run(SelectionPipeline& p) {
    SelectionRequest r;
    r.reference = absl::StrCat(registry_->host(), "/team/app:v1");
    r.budget = absl::Seconds(20);
    return p.Select(r);
  }

  // The reasons of the candidate for `manifest`, joined.
  static std::string ReasonsOf(const Selection& s, const Blob& manifest) {
    for (const Candidate& c : s.decision.candidates) {
      if (s.decision.index.manifests[c.position].digest != manifest.digest()) continue;
      std::vector<std::string> reasons;
      ForEachReason(s.decision, c, [&](absl::string_view r) { reasons.emplace_back(r); });
      return absl::StrJoin(reasons, "\n");
    }
    return "";
  }
  static int64_t ScoreOf(const Selection& s, const Blob& manifest) {
    for (const Candidate& c : s.decision.candidates) {
      if (s.decision.index.manifests[c.position].digest == manifest.digest()) return c.score;
    }
    return -1;
  }

  // Fresh per case of a table: Reset.
  void Reset() { registry_ = std::make_unique<FakeRegistry>(); }
  std::unique_ptr<FakeRegistry> registry_ = std::make_unique<FakeRegistry>();
  Blob derived_, plain_, index_;
};

TEST_F(PipelineBaseTest, ABaseThatRulesTheHostOutRulesTheDerivedEntryOut) {
  const Blob base = ImageManifest("base");
  registry_->AddManifest(base);
  Attach(base, kNeedsKernel7Spec);
  Publish(BaseOf(base));
  auto p = Pipeline();
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_NE(s->chosen(), nullptr);
  EXPECT_EQ(s->chosen()->digest, plain_.digest()) << "the base's requirement is the entry's";
  EXPECT_FALSE(s->decision.fallback);
  EXPECT_THAT(ReasonsOf(*s, derived_), HasSubstr(absl::StrCat("from base ", BaseName(base))));
  ASSERT_EQ(s->compat[derived_.digest()].size(), 1u);
  EXPECT_EQ(s->compat[derived_.digest()][0]->from_base, BaseName(base));
  EXPECT_EQ(s->compat.count(plain_.digest()), 0u) << "the entry without a base has no artifacts";
}

// [compat] base_images = false: no entry manifest is read for its base
// annotations, no base is followed, and the base's requirement is not the
// entry's.
TEST_F(PipelineBaseTest, TurnedOffNoEntryManifestIsReadAndNoBaseFollowed) {
  const Blob base = ImageManifest("base");
  registry_->AddManifest(base);
  Attach(base, kNeedsKernel7Spec);
  Publish(BaseOf(base));
  auto p = Pipeline(/*fallback_on_error=*/true, /*base_images=*/false);
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_NE(s->chosen(), nullptr);
  EXPECT_EQ(s->chosen()->digest, derived_.digest()) << "the base is not followed";
  EXPECT_FALSE(s->decision.fallback);
  EXPECT_EQ(registry_->Count(absl::StrCat("/manifests/", base.digest())), 0);
  EXPECT_EQ(registry_->Count(absl::StrCat("/referrers/", base.digest())), 0);
  EXPECT_EQ(s->compat.count(derived_.digest()), 0u);
}

TEST_F(PipelineBaseTest, WeightsOfTheImageAndOfItsBaseAdd) {
  const Blob base = ImageManifest("base");
  registry_->AddManifest(base);
  Attach(base, KernelAtLeast5Spec(20));
  Publish(BaseOf(base));
  Attach(derived_, KernelAtLeast5Spec(7));
  Attach(index_, KernelAtLeast5Spec(3));
  auto p = Pipeline();
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_NE(s->chosen(), nullptr);
  EXPECT_EQ(s->chosen()->digest, derived_.digest());
  // The image's own: the best of the index's 3 and the entry's 7; the base
  // adds its 20.
  EXPECT_EQ(ScoreOf(*s, derived_), 27);
  EXPECT_EQ(ScoreOf(*s, plain_), 3);
}

// A base that is an index: the entry for the derived entry's platform is
// the base (its artifacts and the base index's apply), another platform's
// entry is not.
TEST_F(PipelineBaseTest, ABaseIndexStandsForItsEntryOfTheDerivedPlatform) {
  struct Case {
    const char* name;
    const char* failing_on;  // "amd64", "arm64" or "index"
    bool ruled_out;
  };
  for (const Case& c : {Case{"the amd64 entry's artifact", "amd64", true},
                        Case{"the arm64 entry's artifact", "arm64", false},
                        Case{"the base index's artifact", "index", true}}) {
    SCOPED_TRACE(c.name);
    Reset();
    const Blob amd64 = ImageManifest(absl::StrCat("base amd64 ", c.name));
    const Blob arm64 = ImageManifest(absl::StrCat("base arm64 ", c.name));
    const Blob base = Index({{kArm64, &arm64}, {kAmd64, &amd64}});
    for (const Blob* b : {&amd64, &arm64, &base}) registry_->AddManifest(*b);
    const std::string on = c.failing_on;
    Attach(on == "amd64" ? amd64 : on == "arm64" ? arm64 : base, kNeedsKernel7Spec);
    Publish(BaseOf(base));
    auto p = Pipeline();
    auto s = Run(*p);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_NE(s->chosen(), nullptr);
    EXPECT_EQ(s->chosen()->digest, c.ruled_out ? plain_.digest() : derived_.digest());
    if (c.ruled_out) {
      EXPECT_THAT(ReasonsOf(*s, derived_), HasSubstr(absl::StrCat("from base ", BaseName(base))));
    }
    EXPECT_EQ(registry_->Count(absl::StrCat("/manifests/", arm64.digest())), 0)
        << "another platform's entry is not read";
  }
}

// base1 -> base2 -> base3 -> base4: three levels are followed, the fourth
// is not (and a warning says so).
TEST_F(PipelineBaseTest, AChainIsFollowedThreeLevelsDeep) {
  for (int failing_level : {3, 4}) {
    SCOPED_TRACE(absl::StrCat("failing artifact on level ", failing_level));
    Reset();
    std::vector<Blob> bases;
    bases.push_back(ImageManifest(absl::StrCat("base4 ", failing_level)));
    for (int level = 3; level >= 1; --level) {
      bases.insert(bases.begin(), ImageManifest(absl::StrCat("base", level, " ", failing_level),
                                                BaseOf(bases.front())));
    }
    for (const Blob& b : bases) registry_->AddManifest(b);
    Attach(bases[failing_level - 1], kNeedsKernel7Spec);
    Publish(BaseOf(bases[0]));
    auto p = Pipeline();
    auto s = Run(*p);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_NE(s->chosen(), nullptr);
    if (failing_level == 3) {
      EXPECT_EQ(s->chosen()->digest, plain_.digest());
      EXPECT_THAT(ReasonsOf(*s, derived_),
                  HasSubstr(absl::StrCat("from base ", BaseName(bases[2]))));
    } else {
      EXPECT_EQ(s->chosen()->digest, derived_.digest());
      EXPECT_EQ(registry_->Count(absl::StrCat("/manifests/", bases[3].digest())), 0);
      EXPECT_THAT(absl::StrJoin(s->warnings, "\n"), HasSubstr("at most 3 levels"));
    }
  }
}

// Entries built on one base: it is read and listed once, and a warm
// selection reads nothing.
TEST_F(PipelineBaseTest, ASharedBaseIsReadOnceAndKeptByDigest) {
  const Blob base = ImageManifest("base");
  registry_->AddManifest(base);
  Attach(base, KernelAtLeast5Spec(20));
  derived_ = ImageManifest("derived", BaseOf(base));
  plain_ = ImageManifest("plain", BaseOf(base));
  index_ = Index({{kAmd64, &derived_}, {kAmd64, &plain_}});
  for (const Blob* b : {&derived_, &plain_}) registry_->AddManifest(*b);
  registry_->AddManifest(index_, "v1");
  auto p = Pipeline();
  auto cold = Run(*p);
  ASSERT_TRUE(cold.ok()) << cold.status();
  EXPECT_EQ(registry_->Count(absl::StrCat("/manifests/", base.digest())), 1);
  EXPECT_EQ(registry_->Count(absl::StrCat("/referrers/", base.digest())), 1);
  EXPECT_EQ(registry_->Count(absl::StrCat("/manifests/", derived_.digest())), 1);
  EXPECT_EQ(ScoreOf(*cold, derived_), 20);
  EXPECT_EQ(ScoreOf(*cold, plain_), 20);
  auto warm = Run(*p);
  ASSERT_TRUE(warm.ok()) << warm.status();
  EXPECT_EQ(warm->round_trips, 1) << "the GET of the tag; entries, bases and lists from memory";
  EXPECT_EQ(ScoreOf(*warm, derived_), 20);
}

TEST_F(PipelineBaseTest, ABaseDigestWithoutANameIsInTheImagesRepository) {
  const Blob base = ImageManifest("base");
  registry_->AddManifest(base);
  Attach(base, kNeedsKernel7Spec);
  Publish(absl::StrCat(R"("org.opencontainers.image.base.digest":")", base.digest(), R"(")"));
  auto p = Pipeline();
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_NE(s->chosen(), nullptr);
  EXPECT_EQ(s->chosen()->digest, plain_.digest());
  EXPECT_EQ(registry_->Count(absl::StrCat("/v2/team/app/manifests/", base.digest())), 1);
  EXPECT_THAT(ReasonsOf(*s, derived_),
              HasSubstr(absl::StrCat("from base ", BaseName(base, "team/app"))));
}

// A base that cannot be read is a requirement nobody can check: [compat]
// on_error decides, as for an artifact that cannot be read.
TEST_F(PipelineBaseTest, AnUnreadableBaseFollowsOnError) {
  const Blob missing = ImageManifest("never pushed");
  Publish(BaseOf(missing));
  {
    auto p = Pipeline(/*fallback_on_error=*/true);
    auto s = Run(*p);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(s->decision.fallback);
    EXPECT_THAT(s->decision.fallback_reason,
                HasSubstr(absl::StrCat("base image ", BaseName(missing))));
  }
  {
    auto p = Pipeline(/*fallback_on_error=*/false);
    auto s = Run(*p);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_FALSE(s->decision.fallback);
    ASSERT_NE(s->chosen(), nullptr);
    EXPECT_EQ(s->chosen()->digest, derived_.digest());
    EXPECT_THAT(absl::StrJoin(s->warnings, "\n"),
                HasSubstr(absl::StrCat("base image ", BaseName(missing))));
  }
}

TEST_F(PipelineBaseTest, AnAnnotationThatIsNotADigestIsAWarningNotAFailure) {
  Publish(R"("org.opencontainers.image.base.digest":"sha256:short")");
  auto p = Pipeline();
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->decision.fallback);
  ASSERT_NE(s->chosen(), nullptr);
  EXPECT_EQ(s->chosen()->digest, derived_.digest());
  EXPECT_THAT(absl::StrJoin(s->warnings, "\n"), HasSubstr("org.opencontainers.image.base.digest"));
}

}  // namespace
}  // namespace imgsel
