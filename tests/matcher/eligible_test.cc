// EligibleEntries held equal to Select: for every index, host and policy
// below, the positions it returns are exactly the candidates Select marks
// eligible. The pipeline lists compatibility artifacts for those entries
// only, so a disagreement would skip (or waste) a referrers query.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "matcher/select.h"

namespace imgsel {
namespace {

std::string Digest(int i) {
  std::string hex = absl::StrCat(i);
  return absl::StrCat("sha256:", std::string(64 - hex.size(), '0'), hex);
}

// One entry as it appears in the index, without its digest and size: the
// JSON members after them ("" for an entry with no platform).
std::string Entry(const std::string& members,
                  const std::string& media_type = "application/vnd.oci.image.manifest.v1+json") {
  return absl::StrCat(R"("mediaType":")", media_type, "\"", members);
}

ParsedIndex Index(const std::vector<std::string>& entries) {
  std::vector<std::string> parts;
  for (size_t i = 0; i < entries.size(); ++i) {
    parts.push_back(absl::StrCat("{", entries[i], R"(,"digest":")", Digest(static_cast<int>(i)),
                                 R"(","size":100})"));
  }
  auto index = ParseIndex(absl::StrCat(R"({"mediaType":"application/vnd.oci.image.index.v1+json",)",
                                       R"("manifests":[)", absl::StrJoin(parts, ","), "]}"));
  EXPECT_TRUE(index.ok()) << index.status();
  return *std::move(index);
}

HostProfile Host(const std::string& platform, std::vector<std::string> features = {}) {
  HostProfile h;
  h.platform = *ParsePlatformSpecifier(platform);
  for (auto& f : features) h.features.insert(f);
  return h;
}

std::vector<size_t> SelectEligible(const ParsedIndex& index, const HostProfile& host,
                                   const Policy& policy, const SelectOptions& options) {
  std::vector<size_t> out;
  for (const Candidate& c : Select(index, host, policy, options).candidates) {
    if (c.eligible) out.push_back(c.position);
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(EligibleEntries, AgreesWithSelect) {
  // Every kind of entry Select rejects or keeps, in one index.
  const ParsedIndex mixed = Index({
      Entry(R"(,"platform":{"os":"linux","architecture":"amd64"})"),                 // 0
      Entry(R"(,"platform":{"os":"linux","architecture":"amd64","variant":"v3"})"),  // 1
      Entry(R"(,"platform":{"os":"linux","architecture":"amd64","features":["avx2","bmi2"]})"),
      Entry(R"(,"platform":{"os":"linux","architecture":"amd64","features":["avx512f"]})"),
      Entry(R"(,"platform":{"os":"linux","architecture":"amd64","features":["quantum9"]})"),
      Entry(R"(,"platform":{"os":"linux","architecture":"arm64"})"),  // 5
      Entry(R"(,"platform":{"os":"linux","architecture":"arm64","features":["sve2"]})"),
      Entry(R"(,"platform":{"os":"linux","architecture":"arm","variant":"v7"})"),
      Entry(R"(,"platform":{"os":"linux","architecture":"amd64"},"artifactType":"a/b")"),
      Entry(R"(,"platform":{"os":"linux","architecture":"amd64"})",
            "application/vnd.oci.image.index.v1+json"),  // 9
      Entry(R"(,"platform":{"os":"linux","architecture":"amd64"})", "text/plain"),
      Entry(""),  // 11
      Entry(""),
      Entry(""),
      Entry(R"(,"platform":{"os":"windows","architecture":"amd64","os.version":"10.0.20348.1"})"),
      Entry(R"(,"platform":{"os":"linux","architecture":"amd64","os.features":["x"]})"),
      Entry(R"(,"platform":{"os":"linux","architecture":"amd64","features":["AVX2","sse4.2"]})"),
  });
  Policy reject;
  Policy ignore;
  ignore.unknown_features = UnknownFeatures::kIgnore;
  std::map<std::string, Platform> configs = {{Digest(11), *ParsePlatformSpecifier("linux/arm64")},
                                             {Digest(12), *ParsePlatformSpecifier("linux/amd64")}};
  std::map<std::string, CompatVerdict> verdicts;
  verdicts[Digest(0)].passed = false;
  verdicts[Digest(1)].weight = 10;
  verdicts[Digest(12)].passed = false;

  struct Case {
    std::string name;
    HostProfile host;
    const Policy* policy;
    SelectOptions options;
    std::vector<size_t> want;  // written out, so that both cannot be wrong together
  };
  const std::vector<Case> cases = {
      {"amd64 v1", Host("linux/amd64"), &reject, {}, {0, 11, 12, 13}},
      {"amd64 v3", Host("linux/amd64/v3"), &reject, {}, {0, 1, 2, 11, 12, 13, 16}},
      {"amd64 v4 with an unknown name passed over",
       Host("linux/amd64/v4"),
       &ignore,
       {},
       {0, 1, 2, 3, 4, 11, 12, 13, 16}},
      {"a name the operator declared is known",
       Host("linux/amd64", {"quantum9"}),
       &reject,
       {},
       {0, 4, 11, 12, 13}},
      // containerd sees no amd64 level: the v3 entry does not run.
      {"first match ignores features and levels",
       Host("linux/amd64/v3"),
       &reject,
       {.kind = PolicyKind::kFirstMatch},
       {0, 2, 3, 4, 11, 12, 13, 16}},
      {"arm64 v8.0", Host("linux/arm64"), &reject, {}, {5, 7, 11, 12, 13}},
      {"arm64 v9 has sve2", Host("linux/arm64/v9"), &reject, {}, {5, 6, 7, 11, 12, 13}},
      {"configs decide platformless entries",
       Host("linux/amd64"),
       &reject,
       {.config_platforms = &configs},
       {0, 12, 13}},
      {"failed verdicts rule out, weights do not",
       Host("linux/amd64/v3"),
       &reject,
       {.compat = &verdicts, .config_platforms = &configs},
       {1, 2, 13, 16}},
      {"first match reads no verdicts",
       Host("linux/amd64"),
       &reject,
       {.kind = PolicyKind::kFirstMatch, .compat = &verdicts},
       {0, 2, 3, 4, 11, 12, 13, 16}},
      {"a windows host", Host("windows/amd64"), &reject, {}, {11, 12, 13, 14}},
      {"s390x runs only what has no platform", Host("linux/s390x"), &reject, {}, {11, 12, 13}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::vector<size_t> got = EligibleEntries(mixed, c.host, *c.policy, c.options);
    EXPECT_EQ(got, SelectEligible(mixed, c.host, *c.policy, c.options));
    EXPECT_EQ(got, c.want);
  }
}

TEST(EligibleEntries, ASingleManifestHasNone) {
  auto manifest = ParseIndex(
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]})");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_TRUE(EligibleEntries(*manifest, Host("linux/amd64"), {}).empty());
}

}  // namespace
}  // namespace imgsel
