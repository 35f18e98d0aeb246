// The created-annotation rule: which keys, which values, which spelling wins.
#include "oci/created.h"

#include <map>
#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace imgsel {
namespace {

const absl::Time kMarch27 =
    absl::FromCivil(absl::CivilSecond(2024, 3, 27, 8, 8, 8), absl::UTCTimeZone());

TEST(ArtifactCreated, AcceptsBothSpellingsAndPrefersTheSpecs) {
  const struct {
    const char* name;
    std::map<std::string, std::string> annotations;
    std::optional<absl::Time> want;
  } cases[] = {
      {"image-spec key", {{"org.opencontainers.image.created", "2024-03-27T08:08:08Z"}}, kMarch27},
      {"other spelling, offset",
       {{"oci.opencontainers.image.created", "2024-03-27T10:08:08+02:00"}},
       kMarch27},
      {"not RFC 3339", {{"org.opencontainers.image.created", "yesterday"}}, std::nullopt},
      {"none", {}, std::nullopt},
      {"image-spec key wins",
       {{"org.opencontainers.image.created", "2024-03-27T08:08:08Z"},
        {"oci.opencontainers.image.created", "2030-01-01T00:00:00Z"}},
       kMarch27},
      {"a bad image-spec value falls back",
       {{"org.opencontainers.image.created", "soon"},
        {"oci.opencontainers.image.created", "2024-03-27T08:08:08Z"}},
       kMarch27},
      {"another key is no time",
       {{"org.opencontainers.image.version", "2024-03-27T08:08:08Z"}},
       std::nullopt},
  };
  for (const auto& c : cases) EXPECT_EQ(ArtifactCreated(c.annotations), c.want) << c.name;
}

TEST(ParseCreatedAnnotation, OnlyTheCreatedKeys) {
  EXPECT_EQ(ParseCreatedAnnotation(kCreatedAnnotation, "2024-03-27T08:08:08Z"), kMarch27);
  EXPECT_EQ(ParseCreatedAnnotation("org.opencontainers.image.title", "2024-03-27T08:08:08Z"),
            std::nullopt);
}

TEST(FormatCreated, WhatItWritesReadsBack) {
  EXPECT_EQ(FormatCreated(kMarch27), "2024-03-27T08:08:08Z");
  EXPECT_EQ(ParseCreatedAnnotation(kCreatedAnnotation, FormatCreated(kMarch27)), kMarch27);
}

}  // namespace
}  // namespace imgsel
