#include "matcher/features.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace imgsel {
namespace {

TEST(CanonicalFeature, EverySpellingMapsToOneName) {
  const std::pair<const char*, const char*> cases[] = {
      // cpuinfo
      {"pni", "sse3"},
      {"sse4_1", "sse4_1"},
      {"abm", "lzcnt"},
      {"lahf_lm", "lahf_lm"},
      // GCC -m and __builtin_cpu_supports
      {"-msse4.1", "sse4_1"},
      {"sse4.2", "sse4_2"},
      {"bmi", "bmi1"},
      {"-mavx2", "avx2"},
      {"pclmul", "pclmulqdq"},
      {"cmpxchg16b", "cx16"},
      // Go x/sys/cpu
      {"HasSSE41", "sse4_1"},
      {"X86.HasAVX512F", "avx512f"},
      {"ARM64.HasASIMD", "asimd"},
      // NFD (klauspost/cpuid) uppercase
      {"SSE4", "sse4_1"},
      {"SSE42", "sse4_2"},
      {"FMA3", "fma"},
      {"AVX2", "avx2"},
      {"AESNI", "aes"},
      {"OSXSAVE", "xsave"},
      // psABI
      {"LAHF-SAHF", "lahf_lm"},
      {"CMPXCHG16B", "cx16"},
      {"LZCNT", "lzcnt"},
      // arm64
      {"dotprod", "asimddp"},
      {"lse", "atomics"},
      {"neon", "asimd"},
      {"rcpc", "lrcpc"},
      // whitespace and case
      {"  AVX2 ", "avx2"},
  };
  for (const auto& [in, want] : cases) {
    auto got = CanonicalFeature(in);
    ASSERT_TRUE(got.has_value()) << in;
    EXPECT_EQ(*got, want) << in;
  }
}

TEST(CanonicalFeature, UnknownNamesAreUnknown) {
  for (const char* name : {"", "avx3", "hasnothing", "-m", "quantum"}) {
    EXPECT_TRUE(CanonicalFeatures(name).empty()) << name;
  }
}

TEST(CanonicalFeatures, LevelsExpandToPsAbiLists) {
  auto v2 = CanonicalFeatures("x86-64-v2");
  auto v3 = CanonicalFeatures("X86-64-V3");
  auto v4 = CanonicalFeatures("x86_64_v4");
  std::set<std::string> s2(v2.begin(), v2.end()), s3(v3.begin(), v3.end()),
      s4(v4.begin(), v4.end());
  for (const char* f : {"cx16", "lahf_lm", "popcnt", "sse3", "sse4_1", "sse4_2", "ssse3"}) {
    EXPECT_TRUE(s2.contains(f)) << f;
    EXPECT_TRUE(s3.contains(f)) << f;
  }
  for (const char* f : {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave"}) {
    EXPECT_FALSE(s2.contains(f)) << f;
    EXPECT_TRUE(s3.contains(f)) << f;
    EXPECT_TRUE(s4.contains(f)) << f;
  }
  for (const char* f : {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}) {
    EXPECT_FALSE(s3.contains(f)) << f;
    EXPECT_TRUE(s4.contains(f)) << f;
  }
  EXPECT_FALSE(CanonicalFeature("x86-64-v3").has_value()) << "a level is not a single feature";
}

TEST(KnownCanonicalFeatures, AreTheirOwnCanonicalNames) {
  for (auto name : KnownCanonicalFeatures()) {
    auto got = CanonicalFeature(std::string(name));
    ASSERT_TRUE(got.has_value()) << name;
    EXPECT_EQ(*got, name);
  }
}

// What a name needs: its canonical features and all they imply, as GCC's
// -m options (x86) and aarch64 extensions define the implications.
TEST(FeatureNeed, ClosesOverImplications) {
  auto names = [](absl::string_view name) {
    const FeatureSet* need = FeatureNeed(name);
    std::set<std::string> out;
    if (need) {
      for (auto n : FeatureNames(*need)) out.emplace(n);
    }
    return out;
  };
  const struct {
    const char* name;
    std::vector<const char*> has;
    std::vector<const char*> lacks;
  } cases[] = {
      {"avx512f",
       {"avx512f", "avx2", "avx", "sse4_2", "sse4_1", "ssse3", "sse3", "sse2", "sse", "xsave"},
       {"fma", "bmi2", "avx512bw"}},
      {"AVX512BW", {"avx512bw", "avx512f", "avx2"}, {"avx512vl"}},
      {"avx512vbmi", {"avx512bw", "avx512f"}, {}},
      {"-mfma", {"fma", "avx", "sse4_2"}, {"avx2"}},
      {"vpclmulqdq", {"pclmulqdq", "avx", "sse2"}, {"avx2"}},
      {"xop", {"fma4", "sse4a", "avx", "sse3"}, {}},
      {"amx_int8", {"amx_tile", "xsave"}, {}},
      {"x86-64-v3", {"avx2", "fma", "cmov", "sse4_2"}, {"avx512f"}},
      {"sve2", {"sve", "asimdhp", "fphp", "asimd", "fp"}, {"sveaes"}},
      {"svepmull", {"sveaes", "pmull", "aes", "sve2"}, {}},
      {"sha512", {"sha2", "sha1", "asimd"}, {"sha3"}},
      {"ilrcpc", {"lrcpc"}, {}},
      {"popcnt", {"popcnt"}, {"sse4_2"}},
  };
  for (const auto& c : cases) {
    const std::set<std::string> got = names(c.name);
    for (const char* f : c.has) EXPECT_TRUE(got.contains(f)) << c.name << " should need " << f;
    for (const char* f : c.lacks) EXPECT_FALSE(got.contains(f)) << c.name << " needs " << f;
  }
}

TEST(FeatureNeed, AliasesAndRepeatsAreOneNeed) {
  ASSERT_NE(FeatureNeed("avx2"), nullptr);
  EXPECT_EQ(*FeatureNeed("avx2"), *FeatureNeed("AVX2"));
  EXPECT_EQ(*FeatureNeed("avx2"), *FeatureNeed("HasAVX2"));
  EXPECT_EQ(*FeatureNeed("avx2"), *FeatureNeed("-mavx2"));
  EXPECT_EQ(*FeatureNeed("x86-64-v2"), *FeatureNeed("x86_64_v2"));
}

TEST(FeatureNeed, EmptyAndMalformedNamesAreNobodys) {
  for (std::string name :
       {std::string(""), std::string("   "), std::string("avx\n2"), std::string("two words"),
        std::string("a\x1b[2J"), std::string(65, 'a'), std::string("avx2\0", 5)}) {
    EXPECT_FALSE(IsWellFormedFeatureName(name) && FeatureNeed(name) != nullptr)
        << "\"" << name << "\"";
    EXPECT_EQ(FeatureNeed(name), nullptr) << "\"" << name << "\"";
  }
  EXPECT_FALSE(IsWellFormedFeatureName(""));
  EXPECT_FALSE(IsWellFormedFeatureName(std::string(65, 'a')));
  EXPECT_TRUE(IsWellFormedFeatureName(std::string(64, 'a')));
  EXPECT_TRUE(IsWellFormedFeatureName(" -msse4.1 "));
  EXPECT_TRUE(IsWellFormedFeatureName("amd64/v3"));
}

// What a host's level is believed to have.
TEST(PlatformLevelFeatures, LevelsAndVersions) {
  auto has = [](const char* arch, const char* variant, const char* feature) {
    return PlatformLevelFeatures(arch, variant).test(*FeatureBit(feature));
  };
  EXPECT_TRUE(has("amd64", "", "sse2"));
  EXPECT_FALSE(has("amd64", "", "popcnt"));
  EXPECT_TRUE(has("amd64", "v2", "popcnt"));
  EXPECT_TRUE(has("amd64", "v3", "avx2"));
  EXPECT_FALSE(has("amd64", "v3", "avx512f"));
  EXPECT_TRUE(has("amd64", "v4", "avx512vl"));
  EXPECT_EQ(PlatformLevelFeatures("amd64", "v3"), *FeatureNeed("x86-64-v3"));
  EXPECT_TRUE(has("arm64", "", "asimd"));
  EXPECT_FALSE(has("arm64", "", "atomics"));
  EXPECT_TRUE(has("arm64", "v8.1", "atomics"));
  EXPECT_TRUE(has("arm64", "v8.2", "dcpop"));
  EXPECT_FALSE(has("arm64", "v8.2", "jscvt"));
  EXPECT_TRUE(has("arm64", "v9", "sve2"));
  EXPECT_TRUE(has("arm64", "v9", "sve"));
  EXPECT_TRUE(has("arm64", "v9", "sb"));
  EXPECT_FALSE(has("arm64", "v9", "i8mm"));
  EXPECT_TRUE(has("arm64", "v9.1", "i8mm"));
  for (const char* bad : {"v8.10", "v10", "v5", "x"}) {
    EXPECT_TRUE(PlatformLevelFeatures("arm64", bad).none()) << bad;
  }
  EXPECT_TRUE(PlatformLevelFeatures("amd64", "v5").none());
  EXPECT_TRUE(PlatformLevelFeatures("s390x", "").none());
}

// The probe's arm64 version comes from the same table, and never claims a
// version the table cannot tell apart from the one before.
TEST(HighestArm64Variant, FromTheOneTable) {
  auto variant = [](std::vector<const char*> names) {
    FeatureSet has;
    for (const char* n : names) has |= *FeatureNeed(n);
    return HighestArm64Variant(has);
  };
  EXPECT_EQ(variant({"fp", "asimd"}), "");
  EXPECT_EQ(variant({"atomics", "asimdrdm", "crc32", "dcpop"}), "v8.2");
  const std::vector<const char*> v86 = {"atomics", "asimdrdm", "crc32", "dcpop",  "jscvt", "fcma",
                                        "lrcpc",   "dit",      "uscat", "ilrcpc", "flagm", "sb",
                                        "flagm2",  "frint",    "i8mm",  "bf16"};
  EXPECT_EQ(variant(v86), "v8.6");
  std::vector<const char*> v91 = v86;
  v91.push_back("sve2");
  EXPECT_EQ(variant(v91), "v9.1");
  // A profile saying v8.2 is believed to have what the probe required for it.
  EXPECT_EQ(HighestArm64Variant(PlatformLevelFeatures("arm64", "v8.2")), "v8.2");
  EXPECT_EQ(HighestArm64Variant(PlatformLevelFeatures("arm64", "v9")), "v9");
}

}  // namespace
}  // namespace imgsel
