// From the artifacts attached to an entry and to its index to a CompatVerdict.
#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "matcher/compat_eval.h"
#include "tests/matcher/compat_test_util.h"

namespace imgsel {
namespace {

using testing::LoadHost;

constexpr absl::string_view kOciCompatArtifactTypeForTest =
    "application/vnd.oci.image-compatibility.v1";
using testing::ReadTestData;

CompatSpec Spec(const std::string& text) {
  auto spec = ParseCompatSpec(text, SpecFormat::kAuto, "test");
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : CompatSpec{};
}

// One set requiring cpu.cpuid <flag>, with `weight`.
CompatSpec NeedsFlag(const std::string& flag, int weight) {
  return Spec("version: v1alpha1\ncompatibilities:\n- weight: " + std::to_string(weight) +
              "\n  tag: t" + std::to_string(weight) +
              "\n  rules:\n  - name: cpu\n    matchFeatures:\n    - feature: cpu.cpuid\n"
              "      matchExpressions: {" +
              flag + ": {op: Exists}}\n");
}

CompatArtifact Artifact(std::string id, std::string kind, std::string created,
                        std::vector<CompatSpec> specs) {
  CompatArtifact a;
  a.id = std::move(id);
  a.kind = std::move(kind);
  if (!created.empty()) a.annotations["org.opencontainers.image.created"] = created;
  a.specs = std::move(specs);
  return a;
}

HostProfile Avx2Host() {
  HostProfile host;
  host.nfd.flags["cpu.cpuid"] = {"AVX", "AVX2"};
  return host;
}

TEST(CompatArtifacts, NewestPerKindWins) {
  std::vector<CompatArtifact> list = {
      Artifact("sha256:old", "nfd", "2024-01-01T00:00:00Z", {}),
      Artifact("sha256:f", "groups", "", {}),
      Artifact("sha256:new", "nfd", "2024-06-01T00:00:00+02:00", {}),
      Artifact("sha256:undated", "nfd", "", {}),
      Artifact("sha256:mid", "nfd", "2024-03-01T00:00:00Z", {}),
  };
  std::vector<size_t> chosen = NewestArtifacts(list);
  ASSERT_EQ(chosen.size(), 2u);
  EXPECT_EQ(list[chosen[0]].id, "sha256:new");
  EXPECT_EQ(list[chosen[1]].id, "sha256:f");
}

TEST(CompatArtifacts, TheKindIsWhatImgselReadsInTheArtifact) {
  const std::string oci(kOciCompatArtifactTypeForTest);
  struct Case {
    std::string name;
    std::vector<std::string> layers;
    std::string kind;  // empty: nothing imgsel reads
    std::vector<std::string> not_read;
  };
  const std::vector<Case> cases = {
      {"NFD profile",
       {std::string(kOciCompatNfdLayerType)},
       oci + " " + std::string(kOciCompatNfdLayerType),
       {}},
      {"Proposal F groups",
       {std::string(kOciCompatSpecLayerType)},
       oci + " " + std::string(kOciCompatSpecLayerType),
       {}},
      {"the seed's media type",
       {std::string(kK8sNfdCompatSpecLayerType)},
       oci + " " + std::string(kK8sNfdCompatSpecLayerType),
       {}},
      {"another community's layer",
       {"application/vnd.example.mpi.v1+json"},
       "",
       {"application/vnd.example.mpi.v1+json"}},
      {"text", {"text/plain", "text/plain"}, "", {"text/plain"}},
      {"no layer", {}, "", {}},
      {"mixed: the readable part is the kind, the rest not read",
       {"text/plain", std::string(kOciCompatNfdLayerType), std::string(kOciCompatNfdLayerType)},
       oci + " " + std::string(kOciCompatNfdLayerType),
       {"text/plain"}},
      {"two readable types, in any order",
       {std::string(kOciCompatNfdLayerType), std::string(kOciCompatSpecLayerType)},
       oci + " " + std::string(kOciCompatNfdLayerType) + "," + std::string(kOciCompatSpecLayerType),
       {}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ArtifactKind(oci, c.layers), c.kind) << c.name;
    EXPECT_EQ(UnreadMediaTypes(c.layers), c.not_read) << c.name;
  }
  std::vector<std::string> reversed = cases.back().layers;
  std::reverse(reversed.begin(), reversed.end());
  EXPECT_EQ(ArtifactKind(oci, reversed), cases.back().kind);
}

TEST(CompatArtifacts, AnArtifactWithNothingReadableNeitherWinsNorHides) {
  // The foreign artifact is newer than the NFD one and shares its
  // artifactType: it has no kind, so the NFD one is still the newest of its.
  std::vector<CompatArtifact> list = {
      Artifact("sha256:nfd", "oci nfd", "2024-01-01T00:00:00Z", {}),
      Artifact("sha256:mpi", "", "2025-01-01T00:00:00Z", {}),
      Artifact("sha256:text", "", "", {}),
  };
  const std::vector<size_t> chosen = NewestArtifacts(list);
  ASSERT_EQ(chosen.size(), 1u);
  EXPECT_EQ(list[chosen[0]].id, "sha256:nfd");
}

TEST(CompatArtifacts, UnreadArtifactsAndLayersAreListedAndChangeNothing) {
  struct Case {
    std::string name;
    std::vector<CompatArtifact> entry;
    bool passed;
    int64_t weight;
    std::vector<std::string> reasons_contain;  // one per reason, in order
  };
  CompatArtifact foreign = Artifact("sha256:mpi", "", "2025-01-01T00:00:00Z", {});
  foreign.not_read = {"application/vnd.example.mpi.v1+json"};
  CompatArtifact failing =
      Artifact("sha256:nfd", "oci nfd", "2024-01-01T00:00:00Z", {NeedsFlag("AVX512F", 9)});
  CompatArtifact mixed = Artifact("sha256:mix", "oci nfd", "", {NeedsFlag("AVX2", 4)});
  mixed.not_read = {"text/plain"};
  const std::vector<Case> cases = {
      {"a foreign artifact alone: passes, weight 0, named",
       {foreign},
       true,
       0,
       {"sha256:mpi: nothing imgsel reads, ignored; not read: media type "
        "application/vnd.example.mpi.v1+json"}},
      {"a newer foreign artifact does not shadow an older failing NFD one",
       {failing, foreign},
       false,
       0,
       {"sha256:nfd (oci nfd): no set matched", "not read: media type application/vnd.example"}},
      {"an unread layer beside a read one: the read one decides",
       {mixed},
       true,
       4,
       {"matched, weight 4; not read: media type text/plain"}},
  };
  for (const Case& c : cases) {
    EntryCompat r = EvaluateEntryCompat(c.entry, {}, Avx2Host());
    EXPECT_EQ(r.verdict.passed, c.passed) << c.name;
    EXPECT_EQ(r.verdict.weight, c.weight) << c.name;
    ASSERT_EQ(r.verdict.reasons.size(), c.reasons_contain.size()) << c.name;
    for (size_t i = 0; i < c.reasons_contain.size(); ++i) {
      EXPECT_NE(r.verdict.reasons[i].find(c.reasons_contain[i]), std::string::npos)
          << c.name << ": " << r.verdict.reasons[i];
    }
  }
}

TEST(CompatArtifacts, NewestAmongEqualsIsTheFirstListedAndDatedBeatsUndated) {
  std::vector<CompatArtifact> list = {
      Artifact("sha256:a", "nfd", "", {}),
      Artifact("sha256:b", "nfd", "", {}),
  };
  EXPECT_EQ(list[NewestArtifacts(list)[0]].id, "sha256:a");
  list.push_back(Artifact("sha256:c", "nfd", "2020-01-01T00:00:00Z", {}));
  EXPECT_EQ(list[NewestArtifacts(list)[0]].id, "sha256:c");
}

TEST(CompatArtifacts, OnlyTheNewestArtifactIsEvaluated) {
  // The old artifact would match; the newer one (which replaced it) does not.
  std::vector<CompatArtifact> entry = {
      Artifact("sha256:old", "nfd", "2024-01-01T00:00:00Z", {NeedsFlag("AVX2", 5)}),
      Artifact("sha256:new", "nfd", "2024-02-01T00:00:00Z", {NeedsFlag("AVX512F", 9)}),
  };
  EntryCompat c = EvaluateEntryCompat(entry, {}, Avx2Host());
  EXPECT_FALSE(c.verdict.passed);
  ASSERT_EQ(c.artifacts.size(), 1u);
  EXPECT_EQ(c.artifacts[0].id, "sha256:new");
  ASSERT_EQ(c.verdict.reasons.size(), 1u);
  EXPECT_NE(c.verdict.reasons[0].find("sha256:new"), std::string::npos);
  EXPECT_NE(c.verdict.reasons[0].find("no set matched"), std::string::npos);
  EXPECT_NE(c.verdict.reasons[0].find("cpu.cpuid.AVX512F"), std::string::npos)
      << c.verdict.reasons[0];
}

TEST(CompatArtifacts, ProfilesOfOneArtifactAreAlternativesWithTheMaxWeight) {
  CompatSpec a = NeedsFlag("AVX512F", 30);
  a.name = "avx512";
  CompatSpec b = NeedsFlag("AVX2", 20);
  b.name = "avx2";
  CompatSpec c = NeedsFlag("AVX", 10);
  c.name = "baseline";
  std::vector<CompatArtifact> entry = {Artifact("sha256:p", "oci", "", {a, b, c})};
  EntryCompat r = EvaluateEntryCompat(entry, {}, Avx2Host());
  EXPECT_TRUE(r.verdict.passed);
  EXPECT_EQ(r.verdict.weight, 20);
  ASSERT_EQ(r.verdict.reasons.size(), 1u);
  EXPECT_NE(r.verdict.reasons[0].find("avx2 set #1 [tag t20] matched, weight 20"),
            std::string::npos)
      << r.verdict.reasons[0];
}

TEST(CompatArtifacts, EveryApplicableArtifactMustPass) {
  std::vector<CompatArtifact> index = {Artifact("sha256:i", "nfd", "", {NeedsFlag("AVX", 3)})};
  std::vector<CompatArtifact> entry_ok = {Artifact("sha256:e", "nfd", "", {NeedsFlag("AVX2", 7)})};
  std::vector<CompatArtifact> entry_bad = {
      Artifact("sha256:e", "nfd", "", {NeedsFlag("AVX512F", 7)})};

  EntryCompat ok = EvaluateEntryCompat(entry_ok, index, Avx2Host());
  EXPECT_TRUE(ok.verdict.passed);
  EXPECT_EQ(ok.verdict.weight, 7);  // max over the artifacts, not 3 + 7
  EXPECT_EQ(ok.verdict.reasons.size(), 2u);
  EXPECT_TRUE(ok.artifacts[0].on_index);

  // A loose index-level spec does not excuse the entry's own requirement.
  EntryCompat bad = EvaluateEntryCompat(entry_bad, index, Avx2Host());
  EXPECT_FALSE(bad.verdict.passed);
  EXPECT_EQ(bad.verdict.weight, 0);

  // And the index-level one applies to every entry.
  HostProfile no_avx;
  no_avx.nfd.flags["cpu.cpuid"] = {"AVX2"};
  EXPECT_FALSE(EvaluateEntryCompat(entry_ok, index, no_avx).verdict.passed);
}

TEST(CompatArtifacts, NoArtifactsPassWithoutReasons) {
  EntryCompat c = EvaluateEntryCompat({}, {}, Avx2Host());
  EXPECT_TRUE(c.verdict.passed);
  EXPECT_EQ(c.verdict.weight, 0);
  EXPECT_TRUE(c.verdict.reasons.empty());
}

TEST(CompatArtifacts, RealisticSpecRanksHosts) {
  CompatSpec spec = Spec(ReadTestData("compat/realistic.yaml"));
  std::vector<CompatArtifact> entry = {Artifact("sha256:r", "nfd", "", {spec})};
  EXPECT_EQ(EvaluateEntryCompat(entry, {}, LoadHost("compat/host_gpu.json")).verdict.weight, 30);
  EntryCompat avx2 = EvaluateEntryCompat(entry, {}, LoadHost("compat/host_avx2.json"));
  EXPECT_TRUE(avx2.verdict.passed);
  EXPECT_EQ(avx2.verdict.weight, 20);
  EXPECT_NE(avx2.verdict.reasons[0].find("set #2 [tag avx2] matched"), std::string::npos);
}

}  // namespace
}  // namespace imgsel
