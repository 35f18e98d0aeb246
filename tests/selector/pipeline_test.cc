// The selection pipeline against an in-memory registry that speaks the
// referrers API: artifacts rule entries out or lift them, failures follow
// [compat] on_error, the budget is honoured, and the request count is what
// the design promises (one referrers query per subject, one fetch per new
// artifact, nothing on a warm cache).
#include "selector/pipeline.h"

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "matcher/features.h"
#include "oci/digest.h"
#include "oci/media_types.h"
#include "registry/reference.h"
#include "registry/referrers.h"
#include "selector/selection_stage.h"
#include "selector/spec_cache.h"
#include "tests/registry/fake_registry.h"
#include "tests/selector/specs.h"

namespace imgsel {
namespace {

using registry::testing::Blob;
using registry::testing::FakeRegistry;
using registry::testing::FakeRequest;
using registry::testing::FakeResponse;
using registry::testing::MakeArtifact;
using registry::testing::MakeImage;
using registry::testing::TestArtifact;
using registry::testing::TestImage;
using ::testing::HasSubstr;
using testing::KernelAtLeast5Spec;
using testing::KernelSixV3Host;
using testing::kNeedsKernel7Spec;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    generic_ = MakeImage("generic");
    v3_ = MakeImage("v3");
    other_ = MakeImage("other");
    // Entries: generic amd64, amd64/v3, another generic amd64.
    std::vector<std::string> descs = {
        generic_.manifest.Descriptor(R"(,"platform":{"os":"linux","architecture":"amd64"})"),
        v3_.manifest.Descriptor(
            R"(,"platform":{"os":"linux","architecture":"amd64","variant":"v3"})"),
        other_.manifest.Descriptor(R"(,"platform":{"os":"linux","architecture":"amd64"})"),
    };
    index_ = {
        "application/vnd.oci.image.index.v1+json",
        absl::StrCat(
            R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)",
            absl::StrJoin(descs, ","), "]}")};
    for (const TestImage* img : {&generic_, &v3_, &other_}) {
      registry_.AddManifest(img->manifest);
      registry_.AddBlob(img->config);
      registry_.AddBlob(img->layer);
    }
    registry_.AddManifest(index_, "v1");
    cache_dir_ = absl::StrCat(::testing::TempDir(), "/pipeline-cache-",
                              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(cache_dir_);
  }

  void Attach(const Blob& subject, const std::string& spec) {
    TestArtifact a = MakeArtifact(subject, std::string(kNfdArtifactType), spec,
                                  std::string(kNfdSpecLayerType), "2026-01-01T00:00:00Z");
    registry_.AddManifest(a.manifest);
    registry_.AddBlob(a.layer);
    registry_.AddBlob(a.config);
  }

  // An artifact of `artifact_type` whose layers are `layers` (media type,
  // content, and a `name` annotation when not empty), created at `created`.
  struct Layer {
    std::string media_type, content, name;
  };
  void AttachLayers(const Blob& subject, const std::string& artifact_type,
                    const std::vector<Layer>& layers, const std::string& created) {
    const Blob config{"application/vnd.oci.empty.v1+json", "{}"};
    std::vector<std::string> descs;
    for (const Layer& l : layers) {
      const Blob blob{l.media_type, l.content};
      registry_.AddBlob(blob);
      descs.push_back(blob.Descriptor(
          l.name.empty() ? "" : absl::StrCat(R"(,"annotations":{"name":")", l.name, R"("})")));
    }
    const Blob manifest{
        "application/vnd.oci.image.manifest.v1+json",
        absl::StrCat(
            R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)",
            R"("artifactType":")", artifact_type, R"(","config":)", config.Descriptor(),
            R"(,"layers":[)", absl::StrJoin(descs, ","), R"(],"subject":)", subject.Descriptor(),
            R"(,"annotations":{"org.opencontainers.image.created":")", created, R"("}})")};
    registry_.AddBlob(config);
    registry_.AddManifest(manifest);
  }

  std::unique_ptr<SelectionPipeline> Pipeline(bool fallback_on_error = true,
                                              const Clock* clock = &Clock::Real()) {
    Config config = DefaultConfig();
    config.compat.cache_dir = cache_dir_;
    config.compat.fallback_on_error = fallback_on_error;
    config.registry.request_timeout = absl::Seconds(5);
    auto p = SelectionPipeline::Create(config, KernelSixV3Host(), clock);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  absl::StatusOr<Selection> Run(SelectionPipeline& p, absl::string_view suffix = ":v1") {
    SelectionRequest r;
    r.reference = absl::StrCat(registry_.host(), "/team/app", suffix);
    return p.Select(r);
  }

  FakeRegistry registry_;
  TestImage generic_, v3_, other_;
  Blob index_;
  std::string cache_dir_;
};

TEST_F(PipelineTest, WithoutArtifactsTheBestPlatformWins) {
  auto p = Pipeline();
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->is_index);
  EXPECT_EQ(s->document_digest, index_.digest());
  ASSERT_NE(s->chosen(), nullptr);
  EXPECT_EQ(s->chosen()->digest, v3_.manifest.digest());
  EXPECT_TRUE(s->compat.empty());
}

// The chosen image's manifest and config come back with the selection, each
// the exact bytes of its digest, only when asked for, only for the entry
// that won, and never at the price of the selection: a registry that serves
// wrong bytes leaves them out.
TEST_F(PipelineTest, ChosenContentIsTheVerifiedManifestAndConfigOfTheWinner) {
  struct Case {
    std::string name;
    bool ask;
    std::string attach_failing_to;  // a manifest digest: its entry is ruled out
    std::string corrupt_path;       // a path served with wrong bytes
    std::string chosen;
    std::vector<std::string> content;  // digests expected, in order
  };
  const std::string v3_manifest = v3_.manifest.digest();
  const std::string v3_config = v3_.config.digest();
  const std::vector<Case> cases = {
      {"asked", true, "", "", v3_manifest, {v3_manifest, v3_config}},
      {"not asked", false, "", "", v3_manifest, {}},
      {"the config comes back wrong", true, "", "/blobs/" + v3_config, v3_manifest, {v3_manifest}},
      // The entries' manifests are read for their base images: one that
      // cannot be read follows on_error ("fallback": the first match).
      {"the manifest comes back wrong",
       true,
       "",
       "/manifests/" + v3_manifest,
       generic_.manifest.digest(),
       {}},
      // Last: the artifact stays in the registry.
      {"an artifact changes the winner", true, v3_manifest, "", generic_.manifest.digest(), {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeRegistry& reg = registry_;
    if (!c.attach_failing_to.empty()) Attach(v3_.manifest, kNeedsKernel7Spec);
    reg.set_fault([&](const FakeRequest& r) -> std::optional<FakeResponse> {
      if (!c.corrupt_path.empty() && absl::EndsWith(r.Path(), c.corrupt_path)) {
        return FakeResponse{200, {{"Content-Type", "application/octet-stream"}}, "not the bytes"};
      }
      return std::nullopt;
    });
    std::filesystem::remove_all(cache_dir_);
    auto p = Pipeline();
    SelectionRequest r;
    r.reference = absl::StrCat(registry_.host(), "/team/app:v1");
    r.fetch_chosen_content = c.ask;
    auto s = p->Select(r);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_NE(s->chosen(), nullptr);
    EXPECT_EQ(s->chosen()->digest, c.chosen);
    std::vector<std::string> digests;
    for (const VerifiedBlob& b : s->chosen_content) {
      EXPECT_EQ(Sha256Digest(b.bytes), b.digest);
      digests.push_back(b.digest);
    }
    EXPECT_EQ(digests, c.content);
    if (c.content.size() == 2) {
      EXPECT_EQ(s->chosen_content[0].bytes, v3_.manifest.bytes);
      EXPECT_EQ(s->chosen_content[0].media_type, v3_.manifest.media_type);
      EXPECT_EQ(s->chosen_content[1].bytes, v3_.config.bytes);
      EXPECT_EQ(s->chosen_content[1].media_type, v3_.config.media_type);
    }
    reg.set_fault(nullptr);
  }
}

// Artifacts in memory decide at once: the winner's content is fetched after
// the decision, so an entry an artifact rules out is not fetched for nothing.
TEST_F(PipelineTest, WarmArtifactsFetchTheWinnersContentNotTheFirstPassChoice) {
  Attach(v3_.manifest, kNeedsKernel7Spec);
  auto p = Pipeline();
  SelectionRequest r;
  r.reference = absl::StrCat(registry_.host(), "/team/app:v1");
  r.fetch_chosen_content = true;
  auto cold = p->Select(r);
  ASSERT_TRUE(cold.ok()) << cold.status();
  ASSERT_NE(cold->chosen(), nullptr);
  EXPECT_EQ(cold->chosen()->digest, generic_.manifest.digest());
  EXPECT_TRUE(cold->chosen_content.empty()) << "fetched ahead for the first-pass choice";
  const int v3_fetches = registry_.Count("/manifests/" + v3_.manifest.digest());
  auto warm = p->Select(r);
  ASSERT_TRUE(warm.ok()) << warm.status();
  ASSERT_NE(warm->chosen(), nullptr);
  EXPECT_EQ(warm->chosen()->digest, generic_.manifest.digest());
  std::vector<std::string> digests;
  for (const VerifiedBlob& b : warm->chosen_content) digests.push_back(b.digest);
  EXPECT_EQ(digests,
            (std::vector<std::string>{generic_.manifest.digest(), generic_.config.digest()}));
  EXPECT_EQ(registry_.Count("/manifests/" + v3_.manifest.digest()), v3_fetches);
}

TEST_F(PipelineTest, AFailingArtifactRulesTheEntryOutAndAWeightedOneLiftsAnother) {
  Attach(v3_.manifest, kNeedsKernel7Spec);
  Attach(other_.manifest, KernelAtLeast5Spec(20));
  auto p = Pipeline();
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_NE(s->chosen(), nullptr);
  EXPECT_EQ(s->chosen()->digest, other_.manifest.digest());
  EXPECT_EQ(s->decision.candidates[0].score, 20);
  EXPECT_FALSE(s->decision.fallback);
  ASSERT_EQ(s->compat.count(v3_.manifest.digest()), 1u);
  EXPECT_FALSE(s->compat[v3_.manifest.digest()][0]->matched);
}

constexpr char kFailingProfileJson[] =
    R"({"version":"v1alpha1","compatibilities":[{"rules":[{"name":"kernel","matchFeatures":[)"
    R"({"feature":"kernel.version","matchExpressions":{"major":{"op":"Ge","value":["7"]}}}]}]}]})";
constexpr char kWeightedProfileJson[] =
    R"({"version":"v1alpha1","compatibilities":[{"weight":20,"rules":[{"name":"kernel",)"
    R"("matchFeatures":[{"feature":"kernel.version","matchExpressions":)"
    R"({"major":{"op":"Ge","value":["5"]}}}]}]}]})";

// Proposal G: every community shares one artifactType. An artifact imgsel
// cannot read (another community's, or plain text) is listed as not read
// and changes nothing, whatever on_error says and however new it is: the
// older NFD profile on the same entry still rules that entry out.
struct UnreadableCase {
  std::string name;
  std::string media_type;
  std::string content;
  bool fallback_on_error;
};

class UnreadableArtifactTest : public PipelineTest,
                               public ::testing::WithParamInterface<UnreadableCase> {};

TEST_P(UnreadableArtifactTest, ChangesNothing) {
  const UnreadableCase& c = GetParam();
  const std::string oci(kOciCompatArtifactType);
  AttachLayers(v3_.manifest, oci, {{std::string(kOciCompatNfdLayerType), kFailingProfileJson, ""}},
               "2026-01-01T00:00:00Z");
  AttachLayers(v3_.manifest, oci, {{c.media_type, c.content, ""}}, "2026-06-01T00:00:00Z");
  auto p = Pipeline(c.fallback_on_error);
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->decision.fallback) << s->decision.fallback_reason;
  EXPECT_THAT(s->warnings, ::testing::IsEmpty());
  ASSERT_NE(s->chosen(), nullptr);
  EXPECT_EQ(s->chosen()->digest, generic_.manifest.digest()) << "the NFD profile rules v3 out";
  ASSERT_EQ(s->compat[v3_.manifest.digest()].size(), 2u);
  std::string reasons;
  for (const Candidate& cand : s->decision.candidates) {
    if (s->decision.index.manifests[cand.position].digest == v3_.manifest.digest()) {
      reasons = absl::StrJoin(ExplainCandidate(s->decision, cand), "\n");
    }
  }
  EXPECT_THAT(reasons, HasSubstr("no set matched"));
  EXPECT_THAT(reasons, HasSubstr(absl::StrCat("not read: media type ", c.media_type)));
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, UnreadableArtifactTest,
    ::testing::Values(
        UnreadableCase{"ForeignFallback", "application/vnd.example.mpi.v1+json", "{}", true},
        UnreadableCase{"ForeignIgnore", "application/vnd.example.mpi.v1+json", "{}", false},
        UnreadableCase{"TextFallback", "text/plain", "needs a GPU", true},
        UnreadableCase{"TextIgnore", "text/plain", "needs a GPU", false}),
    [](const ::testing::TestParamInfo<UnreadableCase>& info) { return info.param.name; });

// Proposal G: several profiles in one artifact, one layer each with its
// `name`, read back through the whole pipeline; the best matching profile
// gives the weight and is named.
TEST_F(PipelineTest, SeveralProfilesInOneArtifact) {
  AttachLayers(other_.manifest, std::string(kOciCompatArtifactType),
               {{std::string(kOciCompatNfdLayerType), kFailingProfileJson, "kernel7"},
                {std::string(kOciCompatNfdLayerType), kWeightedProfileJson, "kernel5"},
                {"text/plain", "notes", ""}},
               "2026-01-01T00:00:00Z");
  auto p = Pipeline();
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_NE(s->chosen(), nullptr);
  EXPECT_EQ(s->chosen()->digest, other_.manifest.digest());
  EXPECT_EQ(s->decision.candidates[0].score, 20);
  ASSERT_EQ(s->compat[other_.manifest.digest()].size(), 1u);
  const ArtifactResult& a = *s->compat[other_.manifest.digest()][0];
  ASSERT_EQ(a.specs.size(), 2u);
  EXPECT_EQ(a.specs[0].name, "kernel7");
  EXPECT_EQ(a.specs[1].name, "kernel5");
  EXPECT_EQ(a.not_read, std::vector<std::string>{"text/plain"});
  EXPECT_THAT(absl::StrJoin(ExplainCandidate(s->decision, s->decision.candidates[0]), "\n"),
              HasSubstr("kernel5 set #1 matched, weight 20; not read: media type text/plain"));
}

TEST_F(PipelineTest, AnArtifactOnTheIndexAppliesToEveryEntry) {
  Attach(index_, kNeedsKernel7Spec);
  auto p = Pipeline();
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->chosen(), nullptr) << "every entry inherits the failing index artifact";
  EXPECT_EQ(s->compat.size(), 3u);
}

TEST_F(PipelineTest, ColdSelectionQueriesEachSubjectOnceAndWarmMakesNoRequest) {
  Attach(v3_.manifest, KernelAtLeast5Spec(20));
  auto p = Pipeline();
  SelectionRequest r;
  r.reference = absl::StrCat(registry_.host(), "/team/app@", index_.digest());
  auto cold = p->Select(r);
  ASSERT_TRUE(cold.ok()) << cold.status();
  // Four subjects (the index and three eligible entries): one referrers query
  // each; one artifact: its manifest and its one layer.
  EXPECT_EQ(registry_.Count("/referrers/"), 4);
  EXPECT_EQ(registry_.Count("/blobs/"), 1);
  auto warm = p->Select(r);
  ASSERT_TRUE(warm.ok()) << warm.status();
  EXPECT_EQ(warm->round_trips, 0);
  EXPECT_EQ(warm->chosen()->digest, cold->chosen()->digest);
  // A new pipeline (a restart) on the same cache directory: still nothing.
  auto restarted = Pipeline();
  auto again = restarted->Select(r);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->round_trips, 0);
  EXPECT_EQ(again->chosen()->digest, v3_.manifest.digest());
}

// The disk cache only saves round trips: a cache_dir that cannot be set up
// (here a path under a regular file, as a read-only or full file system
// would refuse it) leaves a pipeline that selects, and says why it has no
// cache, instead of no pipeline (imgseld would not start, and kubelet's
// image service with it).
TEST_F(PipelineTest, ACacheDirThatCannotBeSetUpLeavesSelectionWithoutACache) {
  const std::string file = cache_dir_ + ".file";
  std::ofstream(file) << "not a directory";
  Config config = DefaultConfig();
  config.compat.cache_dir = file + "/cache";
  config.registry.request_timeout = absl::Seconds(5);
  auto p = SelectionPipeline::Create(config, KernelSixV3Host());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(absl::StrContains((*p)->cache_warning(), file + "/cache")) << (*p)->cache_warning();
  EXPECT_TRUE(absl::StrContains((*p)->cache_warning(), "running without a disk cache"));
  auto s = Run(**p);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_NE(s->chosen(), nullptr);
  EXPECT_EQ(s->chosen()->digest, v3_.manifest.digest());
  EXPECT_TRUE(Pipeline()->cache_warning().empty());  // a usable directory: no warning
  std::filesystem::remove(file);
}

// Referrers lists are remembered (in memory and on disk) for referrers_ttl
// by the pipeline's clock: past it they are listed again, and so are they
// after the clock went back, however far (a list stamped "in the future"
// is stale, not fresh for the length of the jump).
TEST_F(PipelineTest, ListingsAgeByTheClockAndAJumpBackListsAgain) {
  Attach(v3_.manifest, KernelAtLeast5Spec(20));
  FakeClock clock;
  auto p = Pipeline(/*fallback_on_error=*/true, &clock);
  SelectionRequest r;
  r.reference = absl::StrCat(registry_.host(), "/team/app@", index_.digest());
  const absl::Duration ttl = DefaultConfig().compat.referrers_ttl;
  const absl::Time start = clock.Now();
  const struct {
    absl::Duration at;  // from the cold selection
    int listed;         // referrers queries this selection makes
  } steps[] = {
      {absl::ZeroDuration(), 4},         // cold: the index and three entries
      {ttl - absl::Seconds(1), 0},       // warm
      {ttl, 4},                          // expired: listed again
      {ttl + absl::Seconds(1), 0},       // remembered from the step before
      {ttl - absl::Hours(24 * 365), 4},  // the clock went back a year
      {ttl - absl::Hours(24 * 365), 0},
  };
  for (const auto& step : steps) {
    clock.Set(start + step.at);
    const int before = registry_.Count("/referrers/");
    auto s = p->Select(r);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(registry_.Count("/referrers/") - before, step.listed) << step.at;
    EXPECT_EQ(s->chosen()->digest, v3_.manifest.digest()) << step.at;
  }
}

HostProfile V1Host() {
  HostProfile h = KernelSixV3Host();
  h.platform.variant.clear();  // amd64 v1: the v3 entry does not run
  h.features.clear();
  return h;
}

// `imgsel matrix`: one fetch serves every host. The hosts here differ in
// which entries could win (v1 cannot run the v3 entry), so the fetch lists
// the union; it costs the requests of one host's fetch, and each host's
// decision is the one a selection for that host alone makes.
TEST_F(PipelineTest, OneFetchForManyHostsCostsTheRequestsOfOne) {
  Attach(v3_.manifest, KernelAtLeast5Spec(20));
  Attach(other_.manifest, kNeedsKernel7Spec);
  const HostProfile v1 = V1Host();
  const HostProfile v3 = KernelSixV3Host();
  SelectionRequest r;
  r.reference = absl::StrCat(registry_.host(), "/team/app:v1");

  // Requests since `from`, but for the sha256-<hex> tags asked alongside
  // the referrers API while the repository is not known: how many of those
  // go out depends on which subject's answer comes first.
  auto requests_since = [&](size_t from) {
    size_t n = 0;
    const auto requests = registry_.requests();
    for (size_t i = from; i < requests.size(); ++i) {
      if (!absl::StrContains(requests[i].target, "/manifests/sha256-")) ++n;
    }
    return n;
  };
  auto alone = Pipeline();
  const size_t before_one = registry_.requests().size();
  const HostProfile* one[] = {&v3};
  auto single = alone->Fetch(r, one);
  ASSERT_TRUE(single.ok()) << single.status();
  const size_t requests_of_one = requests_since(before_one);
  EXPECT_GT(requests_of_one, 0u);

  std::filesystem::remove_all(cache_dir_);  // a cold start again
  auto shared = Pipeline();
  const size_t before_many = registry_.requests().size();
  const HostProfile* many[] = {&v1, &v3, &v1, &v3};
  auto fetched = shared->Fetch(r, many);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(requests_since(before_many), requests_of_one);

  const Policy policy = shared->config()->PolicyFor("");
  for (const HostProfile* host : {&v1, &v3}) {
    SCOPED_TRACE(host->platform.variant.empty() ? "v1" : "v3");
    const Selection decided = DecideSelection(*fetched, *host, policy, PolicyKind::kBest);
    SelectionRequest own = r;
    own.host = host;
    auto selected = Pipeline()->Select(own);
    ASSERT_TRUE(selected.ok()) << selected.status();
    ASSERT_NE(decided.chosen(), nullptr);
    ASSERT_NE(selected->chosen(), nullptr);
    EXPECT_EQ(decided.chosen()->digest, selected->chosen()->digest);
    EXPECT_EQ(decided.decision.candidates[0].score, selected->decision.candidates[0].score);
    EXPECT_EQ(decided.compat.size(), selected->compat.size());
  }
  // What each host gets: v1 cannot run v3 and `other` fails its artifact.
  EXPECT_EQ(DecideSelection(*fetched, v1, policy, PolicyKind::kBest).chosen()->digest,
            generic_.manifest.digest());
  EXPECT_EQ(DecideSelection(*fetched, v3, policy, PolicyKind::kBest).chosen()->digest,
            v3_.manifest.digest());
}

// The host is the request's: an artifact's evaluation against the
// pipeline's own host is remembered, and never handed to another host.
TEST_F(PipelineTest, TwoHostsNeverShareAnEvaluation) {
  Attach(v3_.manifest, kNeedsKernel7Spec);  // needs kernel 7; the pipeline's host runs 6
  HostProfile kernel7 = KernelSixV3Host();
  kernel7.nfd.attributes["kernel.version"] = {{"major", "7"}, {"minor", "0"}};
  auto p = Pipeline();
  SelectionRequest r;
  r.reference = absl::StrCat(registry_.host(), "/team/app:v1");
  SelectionRequest for_kernel7 = r;
  for_kernel7.host = &kernel7;
  struct Step {
    const SelectionRequest* request;
    std::string chosen;
  };
  const std::vector<Step> steps = {
      {&r, generic_.manifest.digest()},
      {&for_kernel7, v3_.manifest.digest()},
      {&r, generic_.manifest.digest()},
      {&for_kernel7, v3_.manifest.digest()},
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    SCOPED_TRACE(i);
    auto s = p->Select(*steps[i].request);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_NE(s->chosen(), nullptr);
    EXPECT_EQ(s->chosen()->digest, steps[i].chosen);
    if (i >= 2) {
      EXPECT_EQ(s->round_trips, 1) << "the GET of the tag, the rest from memory";
    }
  }
}

// A reference the caller parsed is used as given: the string is not parsed
// again (here it could not be).
TEST_F(PipelineTest, AParsedReferenceIsNotParsedAgain) {
  auto p = Pipeline();
  SelectionRequest r;
  r.reference = "Not A Reference";
  auto parsed = registry::ParseReference(absl::StrCat(registry_.host(), "/team/app:v1"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  r.parsed_reference = *parsed;
  auto s = p->Select(r);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->reference, parsed->String());
  ASSERT_NE(s->chosen(), nullptr);
  EXPECT_EQ(s->chosen()->digest, v3_.manifest.digest());
}

// A spec within the budget but costly to read (its regexps at the edge of
// the program-size limit), made invalid by its last expression, and unique
// to `test` so that no other test has parsed it.
std::string CostlyInvalidSpec(absl::string_view test) {
  std::string patterns;
  for (int i = 0; i < 8; ++i) absl::StrAppend(&patterns, i ? ", " : "", std::string(4092, 'a'));
  return absl::StrCat("version: v1alpha1\ncompatibilities:\n- description: ", test,
                      "\n  rules:\n  - name: r\n    matchFeatures:\n    - feature: cpu.model\n",
                      "      matchExpressions:\n        vendor_id: {op: InRegexp, value: [",
                      patterns, "]}\n        family: {op: Between, value: [1, 2]}\n");
}

// Eight pulls at once of an image whose spec is costly and invalid: it is
// parsed once, every pull falls back with its error, and later pulls do not
// parse it again.
TEST_F(PipelineTest, ConcurrentPullsParseABadSpecOnceAndRememberIt) {
  Attach(v3_.manifest, CostlyInvalidSpec("ConcurrentPullsParseABadSpecOnceAndRememberIt"));
  auto p = Pipeline(/*fallback_on_error=*/true);
  const int64_t parses_before = SpecCache::Shared().parses();
  constexpr int kPulls = 8;
  std::vector<absl::StatusOr<Selection>> pulls(kPulls, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kPulls; ++i) threads.emplace_back([&, i] { pulls[i] = Run(*p); });
  for (std::thread& t : threads) t.join();
  for (const absl::StatusOr<Selection>& s : pulls) {
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_TRUE(s->decision.fallback);
    EXPECT_THAT(s->decision.fallback_reason, HasSubstr("unknown op \"Between\""));
  }
  EXPECT_EQ(SpecCache::Shared().parses() - parses_before, 1);
  for (int i = 0; i < 3; ++i) {
    auto again = Run(*p);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(again->decision.fallback);
  }
  EXPECT_EQ(SpecCache::Shared().parses() - parses_before, 1) << "the failure is remembered";
}

TEST_F(PipelineTest, ArtifactFailureFallsBackToFirstMatchByDefault) {
  Attach(v3_.manifest, KernelAtLeast5Spec(20));
  registry_.set_fault([](const FakeRequest& req) -> std::optional<FakeResponse> {
    if (absl::StrContains(req.target, "/blobs/")) return FakeResponse{500, {}, "boom"};
    return std::nullopt;
  });
  auto p = Pipeline(/*fallback_on_error=*/true);
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->decision.fallback);
  EXPECT_THAT(s->decision.fallback_reason, HasSubstr("compatibility artifacts"));
  EXPECT_EQ(s->decision.policy, PolicyKind::kFirstMatch);
  ASSERT_NE(s->chosen(), nullptr);
  EXPECT_EQ(s->chosen()->digest, generic_.manifest.digest()) << "containerd's first match";
}

TEST_F(PipelineTest, ArtifactFailureIsIgnoredWhenConfigured) {
  Attach(v3_.manifest, kNeedsKernel7Spec);
  registry_.set_fault([](const FakeRequest& req) -> std::optional<FakeResponse> {
    if (absl::StrContains(req.target, "/blobs/")) return FakeResponse{500, {}, "boom"};
    return std::nullopt;
  });
  auto p = Pipeline(/*fallback_on_error=*/false);
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->decision.fallback);
  ASSERT_FALSE(s->warnings.empty());
  EXPECT_THAT(s->warnings[0], HasSubstr("on_error = \"ignore\""));
  EXPECT_EQ(s->chosen()->digest, v3_.manifest.digest()) << "the unreadable artifact is ignored";
}

TEST_F(PipelineTest, ReferrersFailureFollowsOnErrorToo) {
  registry_.set_fault([](const FakeRequest& req) -> std::optional<FakeResponse> {
    if (absl::StrContains(req.target, "/referrers/")) return FakeResponse{503, {}, "down"};
    return std::nullopt;
  });
  auto p = Pipeline(true);
  auto s = Run(*p);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->decision.fallback);
}

TEST_F(PipelineTest, ResolutionFailuresAreErrorsNamingTheReference) {
  auto p = Pipeline();
  auto missing = Run(*p, ":nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/team/app:nope"));
  EXPECT_EQ(StageOf(missing.status()), SelectionStage::kResolve);

  registry_.AddManifest({"application/vnd.oci.image.index.v1+json", "{\"manifests\": 7}"}, "bad");
  auto garbage = Run(*p, ":bad");
  ASSERT_FALSE(garbage.ok());
  EXPECT_THAT(std::string(garbage.status().message()), HasSubstr("manifests: expected an array"));
  EXPECT_EQ(StageOf(garbage.status()), SelectionStage::kIndex);

  SelectionRequest r;
  r.reference = "Not A Reference";
  EXPECT_EQ(p->Select(r).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StageOf(p->Select(r).status()), SelectionStage::kRequest);
}

TEST_F(PipelineTest, TheBudgetIsHonoured) {
  registry_.set_fault([](const FakeRequest& req) -> std::optional<FakeResponse> {
    if (absl::StrContains(req.target, "/manifests/v1")) {
      FakeResponse slow{404, {}, ""};
      slow.delay = absl::Milliseconds(300);
      return slow;
    }
    return std::nullopt;
  });
  auto p = Pipeline();
  SelectionRequest r;
  r.reference = absl::StrCat(registry_.host(), "/team/app:v1");
  r.budget = absl::Milliseconds(50);
  const absl::Time start = absl::Now();
  auto s = p->Select(r);
  const absl::Duration took = absl::Now() - start;
  // The status and the time: the registry's 300 ms answer is not waited for.
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDeadlineExceeded) << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), "selection budget of 50ms ran out"))
      << s.status();
  EXPECT_LT(took, absl::Milliseconds(250)) << "a 50 ms budget took " << took;
  EXPECT_EQ(StageOf(s.status()), SelectionStage::kBudget);
}

// The stage is the status's payload: kept through a copy, absent on a
// status from elsewhere, whatever the message says.
TEST(SelectionStageTest, TheStageTravelsWithTheStatusNotTheMessage) {
  for (SelectionStage stage :
       {SelectionStage::kRequest, SelectionStage::kResolve, SelectionStage::kIndex,
        SelectionStage::kBudget, SelectionStage::kMemory}) {
    const absl::Status marked = AtStage(absl::UnavailableError("x"), stage);
    const absl::Status copy = marked;
    EXPECT_EQ(StageOf(copy), stage);
    EXPECT_EQ(copy.message(), "x");
  }
  EXPECT_EQ(StageOf(absl::UnavailableError("resolve host/app:v1: refused")), std::nullopt);
  EXPECT_TRUE(AtStage(absl::OkStatus(), SelectionStage::kIndex).ok());
}

// The budget reaches the registry requests themselves: a registry that
// stalls an answer ends the selection at the budget, not at the request
// timeout (5 s here).
TEST_F(PipelineTest, TheBudgetEndsRegistryRequestsInFlight) {
  for (const char* stalled : {"/manifests/", "/referrers/"}) {
    SCOPED_TRACE(stalled);
    registry_.set_fault([stalled](const FakeRequest& req) -> std::optional<FakeResponse> {
      if (!absl::StrContains(req.target, stalled)) return std::nullopt;
      return FakeResponse{404, {}, "", absl::Seconds(3)};
    });
    auto p = Pipeline();
    SelectionRequest r;
    r.reference = absl::StrCat(registry_.host(), "/team/app:v1");
    r.budget = absl::Milliseconds(300);
    const absl::Time start = absl::Now();
    auto s = p->Select(r);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kDeadlineExceeded) << s.status();
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
  }
}

TEST_F(PipelineTest, PlainManifestHasNothingToChoose) {
  registry_.AddManifest(v3_.manifest, "single");
  auto p = Pipeline();
  auto s = Run(*p, ":single");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->is_index);
  EXPECT_TRUE(s->decision.nothing_to_choose);
}

TEST_F(PipelineTest, ReloadChangesWeightsForNewSelections) {
  auto p = Pipeline();
  Config config = *p->config();
  PreferRule rule;
  rule.annotation = "org.example.never";
  rule.weight = 5;
  config.policy.prefer.push_back(rule);
  p->Reload(config);
  EXPECT_EQ(p->config()->policy.prefer.size(), 1u);
}

}  // namespace
}  // namespace imgsel
