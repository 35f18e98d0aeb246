#include "selector/config_platform.h"

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imgsel {
namespace {

std::string Digest(char c) { return absl::StrCat("sha256:", std::string(64, c)); }

// An index of platform-less entries (plus whatever `extra` adds), one per
// digest character.
ParsedIndex Index(const std::string& entries) {
  auto index = ParseIndex(absl::StrCat(R"({"manifests":[)", entries, "]}"));
  EXPECT_TRUE(index.ok()) << index.status();
  return *std::move(index);
}

std::string Entry(char c, const std::string& extra = "") {
  return absl::StrCat(R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")",
                      Digest(c), R"(","size":1)", extra, "}");
}

std::string Manifest(const std::string& config_digest) {
  return absl::StrCat(
      R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")",
      config_digest, R"(","size":2},"layers":[]})");
}

// A registry of blobs by digest, counting reads.
struct Blobs {
  std::map<std::string, std::string> by_digest;
  int reads = 0;
  absl::StatusOr<std::string> Read(absl::string_view digest, size_t max_bytes) {
    ++reads;
    auto it = by_digest.find(std::string(digest));
    if (it == by_digest.end()) return absl::NotFoundError("no such blob");
    if (it->second.size() > max_bytes) return absl::ResourceExhaustedError("too large");
    return it->second;
  }
};

TEST(ConfigPlatform, ReadsEachPlatformlessImage) {
  Blobs blobs;
  blobs.by_digest[Digest('a')] = Manifest(Digest('1'));
  blobs.by_digest[Digest('1')] = R"({"os":"linux","architecture":"aarch64","variant":"v8"})";
  blobs.by_digest[Digest('b')] = Manifest(Digest('2'));
  blobs.by_digest[Digest('2')] = "{}";  // an artifact's empty config: no platform
  blobs.by_digest[Digest('c')] = Manifest(Digest('3'));
  blobs.by_digest[Digest('3')] = R"({"os":7})";  // malformed: left out
  blobs.by_digest[Digest('d')] = "not json";     // malformed manifest: left out
  // 'e' cannot be read at all; 'f' declares an artifactType; 'g' has a platform.
  const ParsedIndex index = Index(
      absl::StrCat(Entry('a'), ",", Entry('b'), ",", Entry('c'), ",", Entry('d'), ",", Entry('e'),
                   ",", Entry('f', R"(,"artifactType":"application/vnd.example")"), ",",
                   Entry('g', R"(,"platform":{"os":"linux","architecture":"amd64"})")));
  ASSERT_TRUE(HasPlatformlessImages(index));
  auto read = [&](absl::string_view d, size_t max) { return blobs.Read(d, max); };
  const std::map<std::string, Platform> got = ReadConfigPlatforms(index, read, read);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(FormatPlatform(got.at(Digest('a'))), "linux/arm64");
  EXPECT_EQ(FormatPlatform(got.at(Digest('b'))), "unknown");
  EXPECT_FALSE(got.contains(Digest('f'))) << "an artifact is not read";
  EXPECT_FALSE(got.contains(Digest('g'))) << "an entry with a platform is not read";
}

TEST(ConfigPlatform, NothingToReadWhenEveryEntryHasAPlatform) {
  const ParsedIndex index =
      Index(Entry('a', R"(,"platform":{"os":"linux","architecture":"amd64"})"));
  EXPECT_FALSE(HasPlatformlessImages(index));
  Blobs blobs;
  auto read = [&](absl::string_view d, size_t max) { return blobs.Read(d, max); };
  EXPECT_TRUE(ReadConfigPlatforms(index, read, read).empty());
  EXPECT_EQ(blobs.reads, 0);
}

// A hostile index of many platform-less entries costs a bounded number of reads.
TEST(ConfigPlatform, ReadsAreBounded) {
  std::string entries;
  const std::string hex = "0123456789abcdef";
  for (char c : hex) absl::StrAppend(&entries, entries.empty() ? "" : ",", Entry(c));
  const ParsedIndex index = Index(entries);
  Blobs blobs;
  auto read = [&](absl::string_view d, size_t max) { return blobs.Read(d, max); };
  ReadConfigPlatforms(index, read, read);
  EXPECT_LE(blobs.reads, static_cast<int>(2 * kMaxConfigReads));
  EXPECT_GE(blobs.reads, static_cast<int>(kMaxConfigReads));
}

TEST(ConfigPlatform, ParsesConfigs) {
  EXPECT_EQ(FormatPlatform(*PlatformFromConfig(R"({"os":"Linux","architecture":"x86_64"})")),
            "linux/amd64");
  EXPECT_FALSE(PlatformFromConfig("[]").ok());
  EXPECT_FALSE(PlatformFromConfig(R"({"architecture":["arm64"]})").ok());
  EXPECT_THAT(std::string(ConfigDigestOf("{}").status().message()),
              ::testing::HasSubstr("/config/digest"));
}

}  // namespace
}  // namespace imgsel
