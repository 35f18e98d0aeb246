#include "matcher/index.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imgsel {
namespace {

using ::testing::HasSubstr;

const std::string kDigestA = "sha256:" + std::string(64, 'a');

std::string Entry(const std::string& fields) {
  return absl::StrCat(R"({"mediaType":"application/vnd.oci.image.manifest.v1+json",)", fields, "}");
}

std::string Index(const std::string& entries) {
  return absl::StrCat(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)",
      entries, "]}");
}

TEST(ParseIndex, KeepsWhatGoToolsDrop) {
  std::string json = Index(Entry(absl::StrCat(
      R"("digest":")", kDigestA, R"(","size":10,"artifactType":"x/y",)",
      R"("annotations":{"b":"2","a":"1"},)",
      R"("platform":{"os":"windows","architecture":"amd64","os.version":"10.0.17763.1",)",
      R"("os.features":["win32k"],"features":["avx2","bmi2"],"unknownField":true})")));
  auto index = ParseIndex(json);
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_EQ(index->manifests.size(), 1u);
  const Descriptor& d = index->manifests[0];
  EXPECT_EQ(d.invalid_reason, "");
  EXPECT_EQ(d.artifact_type, "x/y");
  ASSERT_TRUE(d.platform.has_value());
  EXPECT_EQ(d.platform->os_version, "10.0.17763.1");
  Platform p = d.platform->ToPlatform();
  EXPECT_EQ(p.os_features, std::vector<std::string>{"win32k"});
  EXPECT_EQ(p.features, (std::vector<std::string>{"avx2", "bmi2"}));
  ASSERT_TRUE(d.Annotation("a").has_value());
  EXPECT_EQ(*d.Annotation("a"), "1");
  EXPECT_FALSE(d.Annotation("c").has_value());
}

// The views stay valid for as long as any copy of the ParsedIndex lives.
TEST(ParseIndex, ViewsOutliveTheInputBuffer) {
  ParsedIndex copy;
  {
    std::string json = Index(Entry(
        absl::StrCat(R"("digest":")", kDigestA, R"(","size":1,"annotations":{"k":"v\u00e9"})")));
    auto index = ParseIndex(json);
    ASSERT_TRUE(index.ok());
    copy = *index;
    json.assign(json.size(), 'x');
  }
  ASSERT_EQ(copy.manifests.size(), 1u);
  EXPECT_EQ(copy.manifests[0].digest, kDigestA);
  EXPECT_EQ(*copy.manifests[0].Annotation("k"), "v\xc3\xa9");
}

TEST(ParseIndex, DocumentKinds) {
  EXPECT_EQ(ParseIndex(Index(""))->kind, DocumentKind::kOciIndex);
  EXPECT_EQ(
      ParseIndex(
          R"({"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]})")
          ->kind,
      DocumentKind::kDockerManifestList);
  EXPECT_EQ(ParseIndex(R"({"manifests":[]})")->kind, DocumentKind::kOciIndex);
  EXPECT_EQ(
      ParseIndex(
          R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]})")
          ->kind,
      DocumentKind::kManifest);
  EXPECT_EQ(ParseIndex(R"({"schemaVersion":2,"config":{},"layers":[]})")->kind,
            DocumentKind::kManifest);
}

// The media type a registry did not name: the declared one, else by shape
// (what the registry client once worked out with a parse of its own).
TEST(DocumentMediaType, DeclaredElseByShape) {
  const struct {
    std::string document;
    std::string want;
  } cases[] = {
      {Index(""), "application/vnd.oci.image.index.v1+json"},
      {R"({"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]})",
       "application/vnd.docker.distribution.manifest.list.v2+json"},
      {R"({"manifests":[]})", "application/vnd.oci.image.index.v1+json"},
      {R"({"schemaVersion":2,"config":{},"layers":[]})",
       "application/vnd.oci.image.manifest.v1+json"},
      {R"({"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{}})",
       "application/vnd.docker.distribution.manifest.v2+json"},
  };
  for (const auto& c : cases) {
    auto index = ParseIndex(c.document);
    ASSERT_TRUE(index.ok()) << c.document << ": " << index.status();
    EXPECT_EQ(DocumentMediaType(*index), c.want) << c.document;
  }
}

// Descriptor-level problems skip the entry with a reason that says where.
TEST(ParseIndex, BadDescriptorsAreKeptWithAReason) {
  const std::pair<std::string, std::string> cases[] = {
      {Entry(R"("size":1)"), "manifests[0].digest: missing"},
      {Entry(R"("digest":"sha256:abc","size":1)"), "manifests[0].digest: not a sha256 digest"},
      {Entry(absl::StrCat(R"("digest":"sha256:)", std::string(64, 'A'), R"(","size":1)")),
       "not lowercase hex"},
      {Entry(absl::StrCat(R"("digest":"sha512:)", std::string(64, 'a'), R"(","size":1)")),
       "not a sha512 digest"},
      {Entry(R"("digest":"md5:abc","size":1)"), "unsupported digest algorithm"},
      {Entry(R"("digest":7,"size":1)"), "digest: expected a string"},
      {Entry(absl::StrCat(R"("digest":")", kDigestA, R"(","size":-1)")), "size: negative"},
      {Entry(absl::StrCat(R"("digest":")", kDigestA, R"(","size":"1")")),
       "size: expected an integer"},
      {Entry(absl::StrCat(R"("digest":")", kDigestA, R"(")")), "size: missing"},
      {Entry(absl::StrCat(R"("digest":")", kDigestA, R"(","size":1,"platform":[])")),
       "platform: expected an object"},
      {Entry(absl::StrCat(R"("digest":")", kDigestA, R"(","size":1,"platform":{"os":"linux"})")),
       "platform.architecture: missing"},
      {Entry(absl::StrCat(
           R"("digest":")", kDigestA,
           R"(","size":1,"platform":{"os":"linux","architecture":"amd64","features":"avx2"})")),
       "platform.features: expected an array of strings"},
      {Entry(absl::StrCat(R"("digest":")", kDigestA, R"(","size":1,"annotations":{"a":1})")),
       "annotations[\"a\"]: expected a string"},
      {"42", "manifests[0]: expected an object"},
  };
  for (const auto& [entry, want] : cases) {
    auto index = ParseIndex(Index(entry));
    ASSERT_TRUE(index.ok()) << entry << ": " << index.status();
    ASSERT_EQ(index->manifests.size(), 1u);
    EXPECT_THAT(index->manifests[0].invalid_reason, HasSubstr(want)) << entry;
  }
}

// Document-level problems are errors naming the source and the place.
TEST(ParseIndex, BadDocumentsAreErrors) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "not valid JSON"},
      {"{", "not valid JSON"},
      {"[]", "expected a JSON object"},
      {R"({"mediaType":5})", "mediaType: expected a string"},
      {R"({"mediaType":"text/plain"})", "is not an image index"},
      {R"({"mediaType":"application/vnd.oci.image.index.v1+json"})", "manifests: missing"},
      {R"({"manifests":{}})", "manifests: expected an array"},
      {R"({"schemaVersion":2})", "neither an image index nor a manifest"},
      {R"({"manifests":[],"annotations":[]})", "annotations: expected an object"},
  };
  for (const auto& [json, want] : cases) {
    auto index = ParseIndex(json, "idx.json");
    ASSERT_FALSE(index.ok()) << json;
    EXPECT_THAT(std::string(index.status().message()), HasSubstr("idx.json: ")) << json;
    EXPECT_THAT(std::string(index.status().message()), HasSubstr(want)) << json;
  }
}

TEST(ParseIndex, LimitsAreEnforced) {
  ParseLimits limits;
  limits.max_bytes = 100;
  auto big = ParseIndex(std::string(101, ' '), "big", limits);
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("over the limit of 100"));

  limits = {};
  limits.max_entries = 2;
  std::string three = Index("{},{},{}");
  auto many = ParseIndex(three, "many", limits);
  ASSERT_FALSE(many.ok());
  EXPECT_THAT(std::string(many.status().message()), HasSubstr("3 entries, over the limit of 2"));
  EXPECT_TRUE(ParseIndex(Index("{},{}"), "two", limits).ok());

  limits = {};
  std::string deep =
      absl::StrCat(R"({"manifests":[],"x":)", std::string(100, '['), std::string(100, ']'), "}");
  auto nested = ParseIndex(deep, "deep", limits);
  ASSERT_FALSE(nested.ok());
  EXPECT_THAT(std::string(nested.status().message()), HasSubstr("nested deeper than 64"));
}

}  // namespace
}  // namespace imgsel
