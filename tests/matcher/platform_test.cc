#include "matcher/platform.h"

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
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
      // containerd's table: every arm64 variant runs 32-bit arm/v8 and below.
      {P("linux", "arm64", "v9"),
       {"linux/arm64/v9", "linux/arm64/v8.5", "linux/arm64/v8.4", "linux/arm64/v8.3",
        "linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64", "linux/arm/v8", "linux/arm/v7",
        "linux/arm/v6", "linux/arm/v5"}},
      // v8.x stops at v8.9: there is no v8.10.
      {P("linux", "arm64", "v9.6"),
       {"linux/arm64/v9.6", "linux/arm64/v9.5", "linux/arm64/v9.4", "linux/arm64/v9.3",
        "linux/arm64/v9.2", "linux/arm64/v9.1", "linux/arm64/v9",   "linux/arm64/v8.9",
        "linux/arm64/v8.8", "linux/arm64/v8.7", "linux/arm64/v8.6", "linux/arm64/v8.5",
        "linux/arm64/v8.4", "linux/arm64/v8.3", "linux/arm64/v8.2", "linux/arm64/v8.1",
        "linux/arm64",      "linux/arm/v8",     "linux/arm/v7",     "linux/arm/v6",
        "linux/arm/v5"}},
      // A variant outside the table runs nothing, as in containerd.
      {P("linux", "arm64", "v8.10"), {}},
      {P("linux", "arm64", "v10"), {}},
      // A hostile variant number builds a bounded vector.
      {P("linux", "amd64", "v2147483647"),
       {"linux/amd64/v2147483647", "linux/amd64/v16", "linux/amd64/v15", "linux/amd64/v14",
        "linux/amd64/v13", "linux/amd64/v12", "linux/amd64/v11", "linux/amd64/v10",
        "linux/amd64/v9", "linux/amd64/v8", "linux/amd64/v7", "linux/amd64/v6", "linux/amd64/v5",
        "linux/amd64/v4", "linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"}},
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

// containerd/platforms' own TestOnly table (compare_test.go), row by row:
// for each host, the entries Only(host) matches and those it does not.
struct OnlyCase {
  const char* host;
  std::vector<const char*> match;
  std::vector<const char*> no_match;
};

Platform Spec(absl::string_view s) {
  auto p = ParsePlatformSpecifier(s);
  EXPECT_TRUE(p.ok()) << s;
  return *p;
}

TEST(PlatformMatcher, ContainerdOnlyTable) {
  const OnlyCase cases[] = {
      {"linux/amd64",
       {"linux/amd64", "linux/386"},
       {"linux/amd64/v2", "linux/arm/v7", "linux/arm64", "windows/amd64", "windows/arm"}},
      {"linux/amd64/v2",
       {"linux/amd64", "linux/amd64/v1", "linux/amd64/v2", "linux/386"},
       {"linux/amd64/v3", "linux/amd64/v4", "linux/arm/v7", "linux/arm64", "windows/amd64",
        "windows/arm"}},
      {"linux/386",
       {"linux/386"},
       {"linux/amd64", "linux/arm/v7", "linux/arm64", "windows/amd64", "windows/arm"}},
      {"windows/amd64",
       {"windows/amd64"},
       {"linux/amd64", "linux/arm/v7", "linux/arm64", "windows/arm"}},
      {"linux/arm/v8",
       {"linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8"},
       {"linux/amd64", "linux/arm/v4", "linux/arm64", "windows/amd64", "windows/arm"}},
      {"linux/arm/v7",
       {"linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7"},
       {"linux/amd64", "linux/arm/v4", "linux/arm/v8", "linux/arm64", "windows/amd64",
        "windows/arm"}},
      {"linux/arm/v6",
       {"linux/arm/v5", "linux/arm/v6"},
       {"linux/amd64", "linux/arm", "linux/arm/v4", "linux/arm/v7", "linux/arm/v8", "linux/arm64",
        "windows/amd64", "windows/arm"}},
      {"linux/arm/v5",
       {"linux/arm/v5"},
       {"linux/amd64", "linux/arm", "linux/arm/v4", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8",
        "linux/arm64", "windows/amd64", "windows/arm"}},
      {"linux/arm/v4",
       {"linux/arm/v4"},
       {"linux/amd64", "linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8",
        "linux/arm64", "windows/amd64", "windows/arm"}},
      {"linux/arm64/v9.6",
       {"linux/arm",        "linux/arm/v5",     "linux/arm/v6",     "linux/arm/v7",
        "linux/arm/v8",     "linux/arm64",      "linux/arm64/v8",   "linux/arm64/v8.1",
        "linux/arm64/v8.2", "linux/arm64/v8.3", "linux/arm64/v8.4", "linux/arm64/v8.5",
        "linux/arm64/v8.6", "linux/arm64/v8.7", "linux/arm64/v8.8", "linux/arm64/v8.9",
        "linux/arm64/v9",   "linux/arm64/v9.0", "linux/arm64/v9.1", "linux/arm64/v9.2",
        "linux/arm64/v9.3", "linux/arm64/v9.4", "linux/arm64/v9.5", "linux/arm64/v9.6"},
       {"linux/amd64", "linux/arm/v4", "windows/amd64", "windows/arm", "linux/arm64/v8.10"}},
      {"linux/arm64/v9",
       {"linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8", "linux/arm64",
        "linux/arm64/v8", "linux/arm64/v8.1", "linux/arm64/v8.2", "linux/arm64/v8.3",
        "linux/arm64/v8.4", "linux/arm64/v8.5", "linux/arm64/v9", "linux/arm64/v9.0"},
       {"linux/amd64", "linux/arm/v4", "windows/amd64", "windows/arm", "linux/arm64/v8.6"}},
      {"linux/arm64/v8.1",
       {"linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8", "linux/arm64",
        "linux/arm64/v8", "linux/arm64/v8.1"},
       {"linux/amd64", "linux/arm/v4", "linux/arm/v9", "linux/arm64/v9", "windows/amd64",
        "windows/arm"}},
      {"linux/arm64",
       {"linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8", "linux/arm64",
        "linux/arm64/v8"},
       {"linux/amd64", "linux/arm/v4", "linux/arm/v9", "linux/arm64/v9", "windows/amd64",
        "windows/arm"}},
  };
  for (const auto& c : cases) {
    PlatformMatcher m(Spec(c.host));
    for (const char* e : c.match) {
      EXPECT_TRUE(m.Rank(Spec(e)).has_value()) << c.host << " should run " << e;
    }
    for (const char* e : c.no_match) {
      EXPECT_FALSE(m.Rank(Spec(e)).has_value()) << c.host << " should not run " << e;
    }
  }
}

// containerd's Windows rule (checkWindowsHostAndContainerCompat), with its
// own test's builds: before Windows Server 2022 only the same build; from
// 2022 on, every build from the newest LTSC before the host up to the host.
TEST(PlatformMatcher, WindowsVersionCompatibility) {
  struct Case {
    const char* host;
    const char* entry;
    bool runs;
  };
  const Case cases[] = {
      {"10.0.17763.5329", "10.0.17763.1234", true},  // RS5: same build
      {"10.0.17763.5329", "10.0.20348.1", false},    // RS5 host, newer image
      {"10.0.17763.5329", "10.0.17134.1", false},    // RS5 host, older image
      {"10.0.20348.100", "10.0.20348.1", true},      // 2022: itself
      {"10.0.20348.100", "10.0.17763.1", false},     // 2022 host, RS5 image
      {"10.0.22621.1", "10.0.20348.1", true},        // Windows 11 22H2 runs 2022 images
      {"10.0.22621.1", "10.0.22621.5", true},        // and its own
      {"10.0.22621.1", "10.0.25398.1", false},       // not newer ones
      {"10.0.26100.1", "10.0.20348.1", true},        // 2025 runs 2022
      {"10.0.26200.1", "10.0.20348.1", false},       // after 2025: 2025 and up only
      {"10.0.26200.1", "10.0.26100.1", true},
      {"10.0.20348.1", "6.3.9600.1", false},    // another major.minor
      {"10.0.20348.1", "10.0.99999.1", false},  // unreadable build (> uint16)
      {"", "10.0.17763.1", true},               // host version unknown: any
  };
  for (const auto& c : cases) {
    Platform host = P("windows", "amd64");
    host.os_version = c.host;
    Platform entry = P("windows", "amd64");
    entry.os_version = c.entry;
    EXPECT_EQ(PlatformMatcher(host).Rank(entry).has_value(), c.runs)
        << "host " << c.host << " entry " << c.entry;
  }
}

// Why an entry does not run, for the explanation.
TEST(PlatformMatcher, SaysWhyAnEntryDoesNotRun) {
  Platform host = P("windows", "amd64");
  host.os_version = "10.0.17763.1";
  host.os_features = {"gpu"};
  PlatformMatcher m(host);
  auto why = [&](Platform e) {
    std::vector<absl::string_view> features(e.os_features.begin(), e.os_features.end());
    PlatformView v;
    v.os = e.os;
    v.architecture = e.architecture;
    v.os_version = e.os_version;
    v.os_features = features;
    PlatformMiss miss = PlatformMiss::kNone;
    m.Rank(v, &miss);
    // The missing names view `e`, which goes with this call: copied out.
    std::vector<std::string> missing;
    for (absl::string_view f : m.MissingOsFeatures(v)) missing.emplace_back(f);
    return std::make_pair(miss, missing);
  };
  Platform linux = P("linux", "amd64");
  EXPECT_EQ(why(linux).first, PlatformMiss::kPlatform);
  Platform newer = P("windows", "amd64");
  newer.os_version = "10.0.20348.1";
  EXPECT_EQ(why(newer).first, PlatformMiss::kOsVersion);
  Platform needs = P("windows", "amd64");
  needs.os_features = {"hyperv", "gpu", "foo", "hyperv"};
  auto [miss, missing] = why(needs);
  EXPECT_EQ(miss, PlatformMiss::kOsFeatures);
  EXPECT_EQ(missing, (std::vector<std::string>{"foo", "hyperv"}));
  // win32k is not counted on a Windows host, as containerd strips it.
  Platform legacy = P("windows", "amd64");
  legacy.os_features = {"win32k"};
  EXPECT_EQ(why(legacy).first, PlatformMiss::kNone);
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
