#include "matcher/features.h"

#include <set>

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

}  // namespace
}  // namespace imgsel
