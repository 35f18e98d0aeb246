#include "registry/reference.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace imgsel::registry {
namespace {

const char kHex[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Case {
  std::string input;
  std::string registry, repository, tag, digest;
  std::string api_host;
};

TEST(ReferenceTest, NormalisesLikeContainerTools) {
  std::string d = std::string("sha256:") + kHex;
  const Case cases[] = {
      {"nginx", "docker.io", "library/nginx", "latest", "", "registry-1.docker.io"},
      {"nginx:1.25", "docker.io", "library/nginx", "1.25", "", "registry-1.docker.io"},
      {"user/app", "docker.io", "user/app", "latest", "", "registry-1.docker.io"},
      {"docker.io/nginx", "docker.io", "library/nginx", "latest", "", "registry-1.docker.io"},
      {"index.docker.io/library/nginx", "docker.io", "library/nginx", "latest", "",
       "registry-1.docker.io"},
      {"localhost/app", "localhost", "app", "latest", "", "localhost"},
      {"localhost:5000/app:v1", "localhost:5000", "app", "v1", "", "localhost:5000"},
      {"127.0.0.1:5000/a/b/c:x_y.z-1", "127.0.0.1:5000", "a/b/c", "x_y.z-1", "", "127.0.0.1:5000"},
      {"GHCR.IO/o/app", "ghcr.io", "o/app", "latest", "", "ghcr.io"},
      {"ghcr.io/o/app@" + d, "ghcr.io", "o/app", "", d, "ghcr.io"},
      {"host.example/app:v1@" + d, "host.example", "app", "v1", d, "host.example"},
      {"my-registry.io:443/a__b/c-d.e", "my-registry.io:443", "a__b/c-d.e", "latest", "",
       "my-registry.io:443"},
  };
  for (const Case& c : cases) {
    auto ref = ParseReference(c.input);
    ASSERT_TRUE(ref.ok()) << c.input << ": " << ref.status();
    EXPECT_EQ(ref->registry, c.registry) << c.input;
    EXPECT_EQ(ref->repository, c.repository) << c.input;
    EXPECT_EQ(ref->tag, c.tag) << c.input;
    EXPECT_EQ(ref->digest, c.digest) << c.input;
    EXPECT_EQ(ref->ApiHost(), c.api_host) << c.input;
  }
}

TEST(ReferenceTest, StringAndManifestReference) {
  auto ref = ParseReference("nginx");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->String(), "docker.io/library/nginx:latest");
  EXPECT_EQ(ref->ManifestReference(), "latest");
  const std::string d = absl::StrCat("sha256:", kHex);
  auto pinned = ParseReference(absl::StrCat("h.io/app:v1@", d));
  ASSERT_TRUE(pinned.ok());
  EXPECT_EQ(pinned->String(), absl::StrCat("h.io/app:v1@", d));
  EXPECT_EQ(pinned->ManifestReference(), d);  // the digest wins over the tag
}

// The longest names that fit, and their normal forms read back the same.
TEST(ReferenceTest, NamesUpTo255CharactersNormalisedFitAndRoundTrip) {
  for (const std::string& input : {std::string(237, 'a'), "h.io/" + std::string(250, 'a'),
                                   "u/" + std::string(243, 'a') + ":v1"}) {
    auto ref = ParseReference(input);
    ASSERT_TRUE(ref.ok()) << input << ": " << ref.status();
    EXPECT_EQ(ref->Name().size(), 255u) << input;
    auto again = ParseReference(ref->String());
    ASSERT_TRUE(again.ok()) << ref->String() << ": " << again.status();
    EXPECT_EQ(again->String(), ref->String());
  }
}

TEST(ReferenceTest, RejectsWithAReason) {
  struct Bad {
    std::string input;
    std::string message_part;
  };
  const Bad cases[] = {
      {"", "empty"},
      {"Nginx", "lowercase"},
      {"docker.io/User/app", "lowercase"},
      {"https://ghcr.io/o/app", "scheme"},
      {"app:", "tag"},
      {"app:.bad", "tag"},
      {"app:" + std::string(129, 'a'), "tag"},
      {"app@sha256:abc", "sha256"},
      {"app@md5:" + std::string(32, 'a'), "algorithm"},
      {"a//b", "component"},
      {"a/-b", "component"},
      {"host:99999999/app", "host"},
      {"localhost:99999/x", "host"},
      {"host:0/app", "host"},
      // URL userinfo: said as such, and the secret is not repeated.
      {"user:s3cret@host/x", "credentials do not belong in a reference"},
      {"user@registry.example:5000/team/app:v1", "credentials do not belong in a reference"},
      // 255 characters of registry/repository, counted after normalising:
      // "docker.io/library/" makes a 238-character name one too long.
      {std::string(238, 'a'), "is longer than 255 characters"},
      {"h.io/" + std::string(251, 'a'), "is longer than 255 characters"},
  };
  for (const Bad& c : cases) {
    auto ref = ParseReference(c.input);
    ASSERT_FALSE(ref.ok()) << c.input;
    EXPECT_EQ(ref.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(ref.status().message()).find(c.message_part), std::string::npos)
        << c.input << " -> " << ref.status();
    EXPECT_EQ(std::string(ref.status().message()).find("s3cret"), std::string::npos)
        << "a secret in a reference reached the message";
  }
}

}  // namespace
}  // namespace imgsel::registry
