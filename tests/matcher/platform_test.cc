#include "matcher/platform.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "matcher/index.h"

namespace imgsel {
namespace {

Platform P(std::string os, std::string arch, std::string variant = "") {
  Platform p;
  p.os = std::move(os);
  p.architecture = std::move(arch);
  p.variant = std::move(variant);
  return p;
}

struct NormalizeCase {
  Platform in;
  std::string want;
};

TEST(NormalizePlatform, ContainerdSpellings) {
  const NormalizeCase cases[] = {
      {P("linux", "x86_64"), "linux/amd64"},      {P("linux", "x86-64"), "linux/amd64"},
      {P("Linux", "AMD64", "V1"), "linux/amd64"}, {P("linux", "amd64", "v3"), "linux/amd64/v3"},
      {P("linux", "aarch64"), "linux/arm64"},     {P("linux", "arm64", "v8"), "linux/arm64"},
      {P("linux", "arm64", "8"), "linux/arm64"},  {P("linux", "arm64", "v8.2"), "linux/arm64/v8.2"},
      {P("linux", "armhf"), "linux/arm/v7"},      {P("linux", "armel"), "linux/arm/v6"},
      {P("linux", "arm"), "linux/arm/v7"},        {P("linux", "arm", "7"), "linux/arm/v7"},
      {P("linux", "arm", "5"), "linux/arm/v5"},   {P("linux", "arm", "6"), "linux/arm/v6"},
      {P("linux", "arm", "8"), "linux/arm/v8"},   {P("linux", "i386", "whatever"), "linux/386"},
      {P("macos", "arm64"), "darwin/arm64"},      {P("linux", "s390x"), "linux/s390x"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(FormatPlatform(NormalizePlatform(c.in)), c.want)
        << "input " << c.in.os << "/" << c.in.architecture << "/" << c.in.variant;
  }
}

// The view form (used for every candidate's explanation) normalises exactly
// as the owning one, including names too long for its stack buffers.
TEST(NormalizePlatform, ViewFormatsAsTheOwningForm) {
  const std::string long_name(40, 'X');
  const Platform cases[] = {
      P("linux", "x86_64"),
      P("Linux", "AMD64", "V1"),
      P("linux", "amd64", "v3"),
      P("linux", "aarch64"),
      P("linux", "arm64", "8"),
      P("linux", "armhf"),
      P("linux", "arm"),
      P("linux", "arm", "5"),
      P("linux", "i386", "whatever"),
      P("MacOS", "arm64"),
      P("", ""),
      P("", "amd64"),
      P("unknown", "unknown"),
      P(long_name, "AMD64"),
      P("linux", long_name, long_name),
  };
  for (const Platform& c : cases) {
    PlatformView view;
    view.os = c.os;
    view.architecture = c.architecture;
    view.variant = c.variant;
    EXPECT_EQ(FormatPlatform(view), FormatPlatform(NormalizePlatform(c)))
        << "input " << c.os << "/" << c.architecture << "/" << c.variant;
  }
}

TEST(NormalizePlatform, OsFeaturesSortedAndUnique) {
  Platform p = P("windows", "amd64");
  p.os_features = {"win32k", "a", "win32k"};
  EXPECT_EQ(NormalizePlatform(p).os_features, (std::vector<std::string>{"a", "win32k"}));
}

// The host's vector, best first, as containerd's platformVector builds it.
struct VectorCase {
  Platform host;
  std::vector<std::string> want;
};

TEST(PlatformMatcher, VectorMatchesContainerd) {
  const VectorCase cases[] = {
      {P("linux", "amd64"), {"linux/amd64", "linux/386"}},
      {P("linux", "amd64", "v3"), {"linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"}},
      {P("linux", "amd64", "v4"),
       {"linux/amd64/v4", "linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"}},
      {P("linux", "arm", "v7"), {"linux/arm/v7", "linux/arm/v6", "linux/arm/v5"}},
      {P("linux", "arm", "v5"), {"linux/arm/v5"}},
      {P("linux", "arm64"),
       {"linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"}},
      {P("linux", "arm64", "v8.2"),
       {"linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64", "linux/arm/v8", "linux/arm/v7",
        "linux/arm/v6", "linux/arm/v5"}},
      {P("linux", "arm64", "v9.1"),
       {"linux/arm64/v9.1", "linux/arm64/v9", "linux/arm64/v8.6", "linux/arm64/v8.5",
        "linux/arm64/v8.4", "linux/arm64/v8.3", "linux/arm64/v8.2", "linux/arm64/v8.1",
        "linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"}},
      // containerd maps only "v8."/"v9." prefixes to arm/v8, so a bare "v9"
      // continues with arm/v9; imgsel keeps that to stay identical.
      {P("linux", "arm64", "v9"),
       {"linux/arm64/v9", "linux/arm64/v8.5", "linux/arm64/v8.4", "linux/arm64/v8.3",
        "linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64", "linux/arm/v9", "linux/arm/v8",
        "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"}},
      {P("linux", "s390x"), {"linux/s390x"}},
  };
  for (const auto& c : cases) {
    PlatformMatcher m(c.host);
    std::vector<std::string> got;
    for (const auto& p : m.vector()) got.push_back(FormatPlatform(p));
    EXPECT_EQ(got, c.want) << "host " << FormatPlatform(c.host);
  }
}

struct RankCase {
  Platform host;
  Platform entry;
  std::optional<int> want;
};

TEST(PlatformMatcher, Rank) {
  Platform empty_os = P("", "amd64");
  const RankCase cases[] = {
      {P("linux", "amd64", "v3"), P("linux", "amd64", "v3"), 0},
      {P("linux", "amd64", "v3"), P("linux", "x86_64"), 2},
      {P("linux", "amd64", "v3"), P("linux", "amd64", "v1"), 2},
      {P("linux", "amd64", "v3"), P("linux", "amd64", "v4"), std::nullopt},
      {P("linux", "amd64", "v3"), P("linux", "386"), 3},
      {P("linux", "amd64"), P("linux", "amd64", "v2"), std::nullopt},
      {P("linux", "amd64"), P("windows", "amd64"), std::nullopt},
      {P("linux", "amd64"), P("unknown", "unknown"), std::nullopt},
      {P("linux", "amd64"), empty_os, 0},  // containerd: empty os is the host's
      {P("linux", "arm64"), P("linux", "arm", "v7"), 2},
      {P("linux", "arm64"), P("linux", "armhf"), 2},
      {P("linux", "arm64"), P("linux", "arm64", "v8.1"), std::nullopt},
      {P("linux", "arm", "v6"), P("linux", "arm", "v7"), std::nullopt},
      {P("linux", "arm", "v7"), P("linux", "armel"), 1},
  };
  for (const auto& c : cases) {
    PlatformMatcher m(c.host);
    EXPECT_EQ(m.Rank(c.entry), c.want)
        << "host " << FormatPlatform(c.host) << " entry " << FormatPlatform(c.entry);
  }
}

TEST(PlatformMatcher, WindowsOsVersionMustMatchBuild) {
  Platform host = P("windows", "amd64");
  host.os_version = "10.0.17763.5329";
  PlatformMatcher m(host);
  Platform same_build = P("windows", "amd64");
  same_build.os_version = "10.0.17763.1234";
  Platform other_build = P("windows", "amd64");
  other_build.os_version = "10.0.20348.1";
  Platform no_version = P("windows", "amd64");
  EXPECT_EQ(m.Rank(same_build), 0);
  EXPECT_EQ(m.Rank(other_build), std::nullopt);
  EXPECT_EQ(m.Rank(no_version), 0);
}

TEST(PlatformMatcher, OsFeaturesMustBeSubsetOfHost) {
  Platform host = P("windows", "amd64");
  host.os_features = {"win32k", "gpu"};
  PlatformMatcher m(host);
  Platform subset = P("windows", "amd64");
  subset.os_features = {"win32k"};
  Platform extra = P("windows", "amd64");
  extra.os_features = {"win32k", "hyperv"};
  EXPECT_EQ(m.Rank(subset), 0);
  EXPECT_EQ(m.Rank(extra), std::nullopt);
}

TEST(ParsePlatformSpecifier, AcceptsAndRejects) {
  auto ok = ParsePlatformSpecifier("linux/aarch64/8");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(FormatPlatform(*ok), "linux/arm64");
  for (const char* bad : {"", "linux", "linux/", "/amd64", "linux/amd64/", "a/b/c/d"}) {
    EXPECT_FALSE(ParsePlatformSpecifier(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace imgsel
