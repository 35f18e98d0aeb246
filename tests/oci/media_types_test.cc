// The manifest Accept list names exactly the four image document types.
#include "oci/media_types.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace imgsel {
namespace {

TEST(ManifestAccept, IsTheFourImageDocumentTypesIndexesFirst) {
  std::vector<std::string> listed;
  for (absl::string_view part : absl::StrSplit(kManifestAccept, ',')) {
    listed.emplace_back(absl::StripAsciiWhitespace(part));
  }
  const std::vector<std::string> want = {
      std::string(kOciIndexMediaType), std::string(kOciManifestMediaType),
      std::string(kDockerListMediaType), std::string(kDockerManifestMediaType)};
  EXPECT_EQ(listed, want);
}

}  // namespace
}  // namespace imgsel
