#include "matcher/select.h"

#include <algorithm>
#include <climits>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace imgsel {
namespace {

using ::testing::HasSubstr;

std::string Digest(int i) {
  std::string hex = absl::StrCat(i);
  return absl::StrCat("sha256:", std::string(64 - hex.size(), '0'), hex);
}

// A compact way to write an index entry: platform "os/arch[/variant]" (or ""
// for none), features, annotations.
struct E {
  std::string platform;
  std::vector<std::string> features = {};
  std::vector<std::pair<std::string, std::string>> annotations = {};
  std::string media_type = "application/vnd.oci.image.manifest.v1+json";
};

ParsedIndex MakeIndex(const std::vector<E>& entries) {
  std::string json = R"({"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)";
  for (size_t i = 0; i < entries.size(); ++i) {
    const E& e = entries[i];
    absl::StrAppend(&json, i ? "," : "", R"({"mediaType":")", e.media_type, R"(","digest":")",
                    Digest(static_cast<int>(i)), R"(","size":100)");
    if (!e.platform.empty()) {
      std::vector<std::string> parts = absl::StrSplit(e.platform, '/');
      absl::StrAppend(&json, R"(,"platform":{"os":")", parts[0], R"(","architecture":")", parts[1],
                      "\"");
      if (parts.size() > 2) absl::StrAppend(&json, R"(,"variant":")", parts[2], "\"");
      if (!e.features.empty()) {
        absl::StrAppend(&json, R"(,"features":[")", absl::StrJoin(e.features, "\",\""), "\"]");
      }
      absl::StrAppend(&json, "}");
    }
    if (!e.annotations.empty()) {
      absl::StrAppend(&json, R"(,"annotations":{)");
      for (size_t j = 0; j < e.annotations.size(); ++j) {
        absl::StrAppend(&json, j ? "," : "", "\"", e.annotations[j].first, "\":\"",
                        e.annotations[j].second, "\"");
      }
      absl::StrAppend(&json, "}");
    }
    absl::StrAppend(&json, "}");
  }
  absl::StrAppend(&json, "]}");
  auto index = ParseIndex(json);
  EXPECT_TRUE(index.ok()) << index.status();
  return *std::move(index);
}

HostProfile Host(const std::string& platform, std::vector<std::string> features = {}) {
  HostProfile h;
  h.platform = *ParsePlatformSpecifier(platform);
  for (auto& f : features) h.features.insert(f);
  return h;
}

PreferRule Rule(std::string annotation, int64_t weight, std::optional<std::string> value = {},
                std::string regex = "") {
  PreferRule r;
  r.annotation = std::move(annotation);
  r.weight = weight;
  r.value = std::move(value);
  if (!regex.empty()) r.value_regex = std::make_shared<RE2>(regex);
  return r;
}

// The positions of the eligible candidates, best first.
std::vector<size_t> Ranking(const Decision& d) {
  std::vector<size_t> out;
  for (const auto& c : d.candidates)
    if (c.eligible) out.push_back(c.position);
  return out;
}

struct RankingCase {
  std::string name;
  std::vector<E> entries;
  HostProfile host;
  Policy policy;
  PolicyKind kind;
  std::vector<size_t> want;  // eligible positions, best first
};

TEST(Select, RankingTable) {
  Policy none;
  Policy gpu;
  gpu.prefer = {Rule("com.example.gpu", 10, "nvidia")};
  Policy negative;
  negative.prefer = {Rule("com.example.gpu", -5)};
  Policy regex;
  regex.prefer = {Rule("tier", 3, std::nullopt, "^gold")};
  Policy ignore_unknown;
  ignore_unknown.unknown_features = UnknownFeatures::kIgnore;

  const std::vector<RankingCase> cases = {
      {"first match without weights or features",
       {{"linux/amd64"}, {"linux/amd64"}, {"linux/arm64"}},
       Host("linux/amd64"),
       none,
       PolicyKind::kBest,
       {0, 1}},
      {"a more specific level wins on a v3 host",
       {{"linux/amd64"}, {"linux/amd64/v2"}, {"linux/amd64/v3"}, {"linux/amd64/v4"}},
       Host("linux/amd64/v3"),
       none,
       PolicyKind::kBest,
       {2, 1, 0}},
      {"386 after every amd64 level",
       {{"linux/386"}, {"linux/amd64"}},
       Host("linux/amd64/v2"),
       none,
       PolicyKind::kBest,
       {1, 0}},
      {"first-match ignores the level, as containerd does",
       {{"linux/amd64"}, {"linux/amd64/v3"}},
       Host("linux/amd64/v3"),
       none,
       PolicyKind::kFirstMatch,
       {0}},
      {"first-match ignores weights and features",
       {{"linux/amd64", {"avx512f"}}, {"linux/amd64", {}, {{"com.example.gpu", "nvidia"}}}},
       Host("linux/amd64"),
       gpu,
       PolicyKind::kFirstMatch,
       {0, 1}},
      {"satisfied features break a platform tie",
       {{"linux/amd64"}, {"linux/amd64", {"avx2", "bmi2"}}, {"linux/amd64", {"avx2"}}},
       Host("linux/amd64", {"avx2", "bmi2"}),
       none,
       PolicyKind::kBest,
       {1, 2, 0}},
      {"a missing feature rejects",
       {{"linux/amd64", {"avx512f"}}, {"linux/amd64"}},
       Host("linux/amd64", {"avx2"}),
       none,
       PolicyKind::kBest,
       {1}},
      {"feature aliases are honoured",
       {{"linux/amd64", {"HasAVX2", "-mbmi2", "FMA3"}}},
       Host("linux/amd64", {"avx2", "bmi2", "fma"}),
       none,
       PolicyKind::kBest,
       {0}},
      {"a level in features expands",
       {{"linux/amd64", {"x86-64-v3"}}, {"linux/amd64", {"x86-64-v4"}}},
       Host("linux/amd64",
            {"cmov",    "cx8",    "fpu",  "fxsr",   "mmx",    "sse",   "sse2", "cx16",
             "lahf_lm", "popcnt", "sse3", "sse4_1", "sse4_2", "ssse3", "avx",  "avx2",
             "bmi1",    "bmi2",   "f16c", "fma",    "lzcnt",  "movbe", "xsave"}),
       none,
       PolicyKind::kBest,
       {0}},
      {"unknown features reject by default",
       {{"linux/amd64", {"warp-drive"}}, {"linux/amd64"}},
       Host("linux/amd64"),
       none,
       PolicyKind::kBest,
       {1}},
      {"unknown features pass with ignore",
       {{"linux/amd64", {"warp-drive"}}, {"linux/amd64"}},
       Host("linux/amd64"),
       ignore_unknown,
       PolicyKind::kBest,
       {0, 1}},
      {"a name the host declares is known",
       {{"linux/amd64", {"Warp-Drive"}}},
       Host("linux/amd64", {"warp-drive"}),
       none,
       PolicyKind::kBest,
       {0}},
      {"weights beat platform rank",
       {{"linux/amd64/v3"}, {"linux/amd64", {}, {{"com.example.gpu", "nvidia"}}}},
       Host("linux/amd64/v3"),
       gpu,
       PolicyKind::kBest,
       {1, 0}},
      {"value must equal",
       {{"linux/amd64", {}, {{"com.example.gpu", "amd"}}}, {"linux/amd64"}},
       Host("linux/amd64"),
       gpu,
       PolicyKind::kBest,
       {0, 1}},
      {"negative weights push down",
       {{"linux/amd64", {}, {{"com.example.gpu", "any"}}}, {"linux/amd64"}},
       Host("linux/amd64"),
       negative,
       PolicyKind::kBest,
       {1, 0}},
      {"regex is unanchored RE2",
       {{"linux/amd64", {}, {{"tier", "silver"}}}, {"linux/amd64", {}, {{"tier", "golden"}}}},
       Host("linux/amd64"),
       regex,
       PolicyKind::kBest,
       {1, 0}},
      {"entries without platform rank last",
       {{""}, {"linux/amd64"}},
       Host("linux/amd64"),
       none,
       PolicyKind::kBest,
       {1, 0}},
      {"attestations and nested indexes are rejected",
       {{"unknown/unknown"},
        {"linux/amd64", {}, {}, "application/vnd.oci.image.index.v1+json"},
        {"linux/amd64", {}, {}, "application/vnd.in-toto+json"},
        {"linux/amd64"}},
       Host("linux/amd64"),
       none,
       PolicyKind::kBest,
       {3}},
      {"arm64 host falls back to arm/v7",
       {{"linux/arm/v6"}, {"linux/arm/v7"}, {"linux/amd64"}},
       Host("linux/arm64"),
       none,
       PolicyKind::kBest,
       {1, 0}},
      {"nothing fits",
       {{"linux/arm64"}, {"windows/amd64"}},
       Host("linux/amd64"),
       none,
       PolicyKind::kBest,
       {}},
  };
  for (const auto& c : cases) {
    Decision d = Select(MakeIndex(c.entries), c.host, c.policy, {.kind = c.kind});
    EXPECT_EQ(Ranking(d), c.want) << c.name;
    EXPECT_EQ(d.candidates.size(), c.entries.size()) << c.name;
    EXPECT_EQ(d.selected() != nullptr, !c.want.empty()) << c.name;
  }
}

// With no weights and no features, best equals containerd's first match.
TEST(Select, BestEqualsFirstMatchWithoutWeightsOrFeatures) {
  const std::vector<std::vector<E>> indexes = {
      {{"linux/arm64"}, {"linux/amd64"}, {"linux/amd64"}},
      {{"linux/386"}, {"linux/amd64"}},
      {{""}, {"linux/arm/v7"}, {"linux/arm64"}},
      {{"unknown/unknown"}, {"linux/amd64"}},
  };
  for (const char* host : {"linux/amd64", "linux/arm64", "linux/arm/v7"}) {
    for (const auto& entries : indexes) {
      Decision best = Select(MakeIndex(entries), Host(host), {}, {.kind = PolicyKind::kBest});
      Decision first =
          Select(MakeIndex(entries), Host(host), {}, {.kind = PolicyKind::kFirstMatch});
      EXPECT_EQ(Ranking(best), Ranking(first)) << host;
    }
  }
}

// The order of eligible candidates against a plain sort by the rule of
// select.h (score desc, platform rank asc, specificity desc, os.features
// desc, position asc), on large indexes with few and with many distinct keys.
TEST(Select, OrderIsTheRankingRuleOnLargeIndexes) {
  const char* kPlatforms[] = {"linux/amd64", "linux/amd64/v2", "linux/amd64/v3",
                              "linux/386",   "linux/arm64",    ""};
  const std::vector<std::string> kFeatures = {"avx2", "bmi2", "fma", "sse4_2", "popcnt"};
  for (int distinct_scores : {1, 3, 60}) {
    Policy policy;
    for (int w = 0; w < distinct_scores; ++w) {
      policy.prefer.push_back(Rule("com.example.build", w * 7 - 20, absl::StrCat("b", w)));
    }
    std::vector<E> entries;
    uint32_t seed = 12345u + static_cast<uint32_t>(distinct_scores);
    auto next = [&seed] { return seed = seed * 1103515245u + 12345u, seed >> 8; };
    for (int i = 0; i < 300; ++i) {
      E e{kPlatforms[next() % 6]};
      if (!e.platform.empty() && e.platform.find("arm") == std::string::npos) {
        e.features.assign(kFeatures.begin(), kFeatures.begin() + next() % 4);
      }
      if (next() % 4 != 0) {
        e.annotations = {{"com.example.build", absl::StrCat("b", next() % distinct_scores)}};
      }
      entries.push_back(e);
    }
    const ParsedIndex index = MakeIndex(entries);
    const Decision d = Select(index, Host("linux/amd64/v3", kFeatures), policy);
    std::vector<const Candidate*> want;
    for (const Candidate& c : d.candidates) {
      if (c.eligible) want.push_back(&c);
    }
    ASSERT_GT(want.size(), 100u) << distinct_scores;
    auto rank = [](const Candidate* c) {
      return c->platform_rank < 0 ? INT_MAX : c->platform_rank;
    };
    std::sort(want.begin(), want.end(), [&](const Candidate* a, const Candidate* b) {
      if (a->score != b->score) return a->score > b->score;
      if (rank(a) != rank(b)) return rank(a) < rank(b);
      if (a->specificity != b->specificity) return a->specificity > b->specificity;
      if (a->os_features != b->os_features) return a->os_features > b->os_features;
      return a->position < b->position;
    });
    std::vector<size_t> want_positions;
    for (const Candidate* c : want) want_positions.push_back(c->position);
    EXPECT_EQ(Ranking(d), want_positions) << distinct_scores << " distinct scores";
    // Rejected ones follow, in index order.
    size_t last = 0;
    bool first_rejected = true;
    for (size_t k = want.size(); k < d.candidates.size(); ++k) {
      ASSERT_FALSE(d.candidates[k].eligible);
      if (!first_rejected) {
        EXPECT_GT(d.candidates[k].position, last);
      }
      last = d.candidates[k].position;
      first_rejected = false;
    }
  }
}

TEST(Select, ReasonsExplainEveryCandidate) {
  Policy gpu;
  gpu.prefer = {Rule("com.example.gpu", 10, "nvidia")};
  gpu.prefer[0].origin = "imgsel.toml:7:1";
  Decision d = Select(MakeIndex({{"linux/amd64"},
                                 {"linux/amd64", {}, {{"com.example.gpu", "nvidia"}}},
                                 {"linux/amd64", {"avx512f"}},
                                 {"linux/arm64"}}),
                      Host("linux/amd64"), gpu);
  ASSERT_NE(d.selected(), nullptr);
  EXPECT_EQ(d.selected()->position, 1u);
  auto joined = [&](size_t pos) {
    for (const auto& c : d.candidates)
      if (c.position == pos) return absl::StrJoin(ExplainCandidate(d, c), " | ");
    return std::string();
  };
  EXPECT_THAT(joined(1), HasSubstr("+10 from prefer com.example.gpu=nvidia (imgsel.toml:7:1)"));
  EXPECT_THAT(joined(1), HasSubstr("selected"));
  EXPECT_THAT(joined(0), HasSubstr("lower score (0 < 10)"));
  EXPECT_THAT(joined(2), HasSubstr("requires avx512f, which this host lacks"));
  EXPECT_THAT(joined(3), HasSubstr("platform linux/arm64 does not run on host linux/amd64"));
}

TEST(Select, CompatibilityVerdictsRejectAndWeigh) {
  std::map<std::string, CompatVerdict> compat;
  compat[Digest(0)] = {.passed = false, .weight = 0, .reasons = {"set 0: kernel too old"}};
  compat[Digest(2)] = {.passed = true, .weight = 7, .reasons = {"set 0 matched"}};
  Decision d = Select(MakeIndex({{"linux/amd64"}, {"linux/amd64"}, {"linux/amd64"}}),
                      Host("linux/amd64"), {}, {.compat = &compat});
  EXPECT_EQ(Ranking(d), (std::vector<size_t>{2, 1}));
  EXPECT_EQ(d.candidates[0].score, 7);
}

// Specificity: what entries need (names, levels, implications), compared by
// containment; the author's order otherwise. All on hosts that have every
// feature the entries name unless the case says otherwise.
std::vector<std::string> V4Features() {
  return {"x86-64-v4", "aes", "pclmulqdq", "avx512vnni", "avx512bf16"};
}

TEST(Select, SpecificityTable) {
  Policy none;
  const std::vector<RankingCase> cases = {
      {"avx512f listed first beats avx2,fma on an AVX-512 host (incomparable: author's order)",
       {{"linux/amd64", {"avx512f"}}, {"linux/amd64", {"avx2", "fma"}}},
       Host("linux/amd64/v4", V4Features()),
       none,
       PolicyKind::kBest,
       {0, 1}},
      {"avx2,fma listed first keeps its place: neither contains the other",
       {{"linux/amd64", {"avx2", "fma"}}, {"linux/amd64", {"avx512f"}}},
       Host("linux/amd64/v4", V4Features()),
       none,
       PolicyKind::kBest,
       {0, 1}},
      {"avx512f needs all avx2 needs: it ranks above, wherever it is listed",
       {{"linux/amd64", {"avx2"}}, {"linux/amd64", {"avx512f"}}},
       Host("linux/amd64/v4", V4Features()),
       none,
       PolicyKind::kBest,
       {1, 0}},
      {"a chain generic < sse4.2 < avx2 < avx512bw ranks deepest first",
       {{"linux/amd64"},
        {"linux/amd64", {"sse4.2"}},
        {"linux/amd64", {"avx2"}},
        {"linux/amd64", {"avx512bw"}}},
       Host("linux/amd64/v4", V4Features()),
       none,
       PolicyKind::kBest,
       {3, 2, 1, 0}},
      {"a name spelled three ways is one need, not three",
       {{"linux/amd64", {"avx2", "AVX2", "HasAVX2"}}, {"linux/amd64", {"avx2", "bmi2"}}},
       Host("linux/amd64/v3"),
       none,
       PolicyKind::kBest,
       {1, 0}},
      {"a level and a list of its own features are equal: author's order",
       {{"linux/amd64", {"x86-64-v3"}},
        {"linux/amd64", {"avx",   "avx2", "bmi1",    "bmi2",   "f16c", "fma",    "lzcnt",  "movbe",
                         "xsave", "cx16", "lahf_lm", "popcnt", "sse3", "sse4_1", "sse4_2", "ssse3",
                         "cmov",  "cx8",  "fpu",     "fxsr",   "mmx",  "sse",    "sse2"}}},
       Host("linux/amd64/v3"),
       none,
       PolicyKind::kBest,
       {0, 1}},
      {"the same, the other way round",
       {{"linux/amd64", {"avx2", "bmi1",    "bmi2",   "f16c", "fma",    "lzcnt",  "movbe", "xsave",
                         "cx16", "lahf_lm", "popcnt", "sse3", "sse4_1", "sse4_2", "ssse3", "cmov",
                         "cx8",  "fpu",     "fxsr",   "mmx",  "sse",    "sse2"}},
        {"linux/amd64", {"x86-64-v3"}}},
       Host("linux/amd64/v3"),
       none,
       PolicyKind::kBest,
       {0, 1}},
      {"x86-64-v3 contains avx2: the level ranks above",
       {{"linux/amd64", {"avx2"}}, {"linux/amd64", {"x86-64-v3"}}},
       Host("linux/amd64/v3"),
       none,
       PolicyKind::kBest,
       {1, 0}},
      {"incomparable sets keep the author's order, deeper entries first",
       {{"linux/amd64", {"aes", "pclmulqdq"}},
        {"linux/amd64", {"sse4_2"}},
        {"linux/amd64", {"avx2"}}},
       Host("linux/amd64/v4", V4Features()),
       none,
       PolicyKind::kBest,
       {2, 0, 1}},
      {"arm64: sve2 needs sve, which needs asimd",
       {{"linux/arm64", {"asimd"}}, {"linux/arm64", {"sve2"}}, {"linux/arm64", {"sve"}}},
       Host("linux/arm64", {"fp", "asimd", "fphp", "asimdhp", "sve", "sve2"}),
       none,
       PolicyKind::kBest,
       {1, 2, 0}},
      {"specificity only breaks ties: score first",
       {{"linux/amd64", {"avx512f"}}, {"linux/amd64", {}, {{"com.example.build", "x"}}}},
       Host("linux/amd64/v4", V4Features()),
       [] {
         Policy p;
         p.prefer = {Rule("com.example.build", 1)};
         return p;
       }(),
       PolicyKind::kBest,
       {1, 0}},
      {"specificity only breaks ties: platform rank before it",
       {{"linux/amd64", {"avx512f"}}, {"linux/amd64/v3"}},
       Host("linux/amd64/v4", V4Features()),
       none,
       PolicyKind::kBest,
       {1, 0}},
  };
  for (const auto& c : cases) {
    Decision d = Select(MakeIndex(c.entries), c.host, c.policy, {.kind = c.kind});
    EXPECT_EQ(Ranking(d), c.want) << c.name;
  }
}

// A profile's level is believed: the host has every feature of it whether
// or not the profile lists them; what a listed feature implies, too.
TEST(Select, HostLevelAndImplicationsAreBelieved) {
  const struct {
    const char* name;
    HostProfile host;
    std::vector<std::string> needs;
    bool eligible;
  } cases[] = {
      {"amd64/v3 without a feature list runs x86-64-v3",
       Host("linux/amd64/v3"),
       {"x86-64-v3"},
       true},
      {"amd64/v3 runs avx2,fma,bmi2", Host("linux/amd64/v3"), {"avx2", "fma", "bmi2"}, true},
      {"amd64/v3 does not run avx512f", Host("linux/amd64/v3"), {"avx512f"}, false},
      {"amd64/v2 does not run x86-64-v3", Host("linux/amd64/v2"), {"x86-64-v3"}, false},
      {"plain amd64 runs the baseline", Host("linux/amd64"), {"x86-64-v1", "sse2"}, true},
      {"a listed avx512f implies avx2 and avx",
       Host("linux/amd64", {"avx512f"}),
       {"avx2", "avx", "sse4_2"},
       true},
      {"arm64 v8.2 runs what v8.1 and v8.2 make mandatory",
       Host("linux/arm64/v8.2"),
       {"atomics", "crc32", "asimdrdm", "dcpop", "asimd"},
       true},
      {"arm64 v8.2 does not run v8.3's jscvt", Host("linux/arm64/v8.2"), {"jscvt"}, false},
      {"arm64 v9 runs sve2, sve and v8.5's sb",
       Host("linux/arm64/v9"),
       {"sve2", "sve", "sb"},
       true},
      {"arm64 v9 does not run v8.6's i8mm", Host("linux/arm64/v9"), {"i8mm"}, false},
      {"arm64 v9.1 runs v8.6's i8mm", Host("linux/arm64/v9.1"), {"i8mm"}, true},
  };
  for (const auto& c : cases) {
    std::string platform = FormatPlatform(c.host.platform);
    Decision d = Select(MakeIndex({{platform, c.needs}}), c.host, {});
    EXPECT_EQ(d.selected() != nullptr, c.eligible) << c.name;
    if (!c.eligible) {
      EXPECT_THAT(absl::StrJoin(ExplainCandidate(d, d.candidates[0]), " | "),
                  HasSubstr("which this host lacks"))
          << c.name;
    }
  }
}

std::string Explained(const Decision& d, size_t position) {
  for (const auto& c : d.candidates) {
    if (c.position == position) return absl::StrJoin(ExplainCandidate(d, c), " | ");
  }
  return "";
}

TEST(Select, UnknownNamesPassedOverAreNamed) {
  Policy ignore;
  ignore.unknown_features = UnknownFeatures::kIgnore;
  Decision d = Select(
      MakeIndex({{"linux/amd64", {"warp-drive", "flux"}}, {"linux/amd64", {"warp-drive", "avx2"}}}),
      Host("linux/amd64/v3"), ignore);
  ASSERT_EQ(Ranking(d), (std::vector<size_t>{1, 0}));
  const std::string only_unknown = Explained(d, 0);
  EXPECT_THAT(only_unknown, HasSubstr("passed over unknown feature warp-drive, flux"));
  EXPECT_THAT(only_unknown, ::testing::Not(HasSubstr("requires 0")));
  EXPECT_THAT(only_unknown, ::testing::Not(HasSubstr("requires")));
  const std::string mixed = Explained(d, 1);
  EXPECT_THAT(mixed, HasSubstr("requires avx2: all present"));
  EXPECT_THAT(mixed, HasSubstr("passed over unknown feature warp-drive"));
}

// An empty or malformed name is nobody's feature: unknown under "reject",
// passed over (and shown escaped) under "ignore", never satisfied by a
// host that happens to list the same bytes.
TEST(Select, EmptyAndMalformedNamesAreNobodysFeature) {
  Policy ignore;
  ignore.unknown_features = UnknownFeatures::kIgnore;
  HostProfile host = Host("linux/amd64/v3");
  host.features.insert("");
  host.features.insert("two words");
  for (const std::string& name : {std::string(""), std::string("two words"),
                                  std::string("a\\u001b]0;x\\u0007"), std::string(100, 'a')}) {
    Decision rejected = Select(MakeIndex({{"linux/amd64", {name}}}), host, {});
    // (the JSON escapes above are control characters in the parsed name)
    EXPECT_EQ(rejected.selected(), nullptr) << "name \"" << name << "\"";
    EXPECT_THAT(Explained(rejected, 0), HasSubstr("unknown feature"));
    Decision passed = Select(MakeIndex({{"linux/amd64", {name}}}), host, ignore);
    ASSERT_NE(passed.selected(), nullptr);
    const std::string text = Explained(passed, 0);
    EXPECT_THAT(text, HasSubstr("passed over unknown feature \""));
    EXPECT_EQ(text.find('\x1b'), std::string::npos) << "escapes reach the explanation";
  }
}

TEST(Select, OsFeaturesRejectionNamesTheMissingOnes) {
  auto index = ParseIndex(R"({"manifests":[
    {"mediaType":"application/vnd.oci.image.manifest.v1+json",
     "digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000",
     "size":1,"platform":{"os":"windows","architecture":"amd64",
     "os.features":["hyperv","win32k","foo"]}}]})");
  ASSERT_TRUE(index.ok()) << index.status();
  HostProfile host = Host("windows/amd64");
  host.platform.os_features = {"gpu"};
  Decision d = Select(*std::move(index), host, {});
  EXPECT_EQ(d.selected(), nullptr);
  const std::string text = Explained(d, 0);
  EXPECT_THAT(text, HasSubstr("requires os.features foo, hyperv, which host windows/amd64 lacks"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("does not run on host")));
}

// Windows: entries of one build are ordered by os.version, the larger
// first (as strings, as containerd compares them), in both policies.
TEST(Select, WindowsOrdersByOsVersion) {
  auto index = [] {
    std::string json = R"({"manifests":[)";
    const char* versions[] = {"10.0.17763.1000", "10.0.17763.5329", "", "10.0.17763.2000"};
    for (int i = 0; i < 4; ++i) {
      absl::StrAppend(&json, i ? "," : "",
                      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")",
                      Digest(i), R"(","size":1,"platform":{"os":"windows","architecture":"amd64")");
      if (*versions[i]) absl::StrAppend(&json, R"(,"os.version":")", versions[i], "\"");
      absl::StrAppend(&json, "}}");
    }
    auto parsed = ParseIndex(absl::StrCat(json, "]}"));
    EXPECT_TRUE(parsed.ok());
    return *parsed;
  };
  HostProfile host = Host("windows/amd64");
  host.platform.os_version = "10.0.17763.6000";
  for (PolicyKind kind : {PolicyKind::kFirstMatch, PolicyKind::kBest}) {
    Decision d = Select(index(), host, {}, {.kind = kind});
    EXPECT_EQ(Ranking(d), (std::vector<size_t>{1, 3, 0, 2})) << PolicyKindName(kind);
  }
  Decision d = Select(index(), host, {});
  EXPECT_THAT(Explained(d, 0), HasSubstr("older os.version (10.0.17763.1000 < 10.0.17763.5329)"));
}

// An entry that declares an artifactType is an artifact, not an image, even
// where nothing else fits and even with a platform.
TEST(Select, ArtifactsAreNotImages) {
  auto index = ParseIndex(R"({"manifests":[
    {"mediaType":"application/vnd.oci.image.manifest.v1+json",
     "digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000",
     "size":1,"artifactType":"application/vnd.example.sbom"},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json",
     "digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111",
     "size":1,"artifactType":"application/vnd.example.sig",
     "platform":{"os":"linux","architecture":"amd64"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json",
     "digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222",
     "size":1,"platform":{"os":"linux","architecture":"arm64"}}]})");
  ASSERT_TRUE(index.ok()) << index.status();
  for (PolicyKind kind : {PolicyKind::kFirstMatch, PolicyKind::kBest}) {
    Decision d = Select(*index, Host("linux/amd64"), {}, {.kind = kind});
    EXPECT_EQ(d.selected(), nullptr) << PolicyKindName(kind);
    EXPECT_THAT(Explained(d, 0),
                HasSubstr("an artifact (artifactType \"application/vnd.example.sbom\"), not an "
                          "image"));
  }
}

// An entry without a platform is decided by its image config when the
// caller read it, as containerd does, and still ranks after entries with one.
TEST(Select, NoPlatformDecidedByItsConfig) {
  const ParsedIndex index = MakeIndex({{""}, {""}, {""}, {"linux/386"}});
  std::map<std::string, Platform> configs;
  configs[Digest(0)] = *ParsePlatformSpecifier("linux/arm64");
  configs[Digest(1)] = *ParsePlatformSpecifier("linux/amd64");
  // Digest(2): the config could not be read; accepted, ranked last.
  Decision d = Select(index, Host("linux/amd64"), {}, {.config_platforms = &configs});
  EXPECT_EQ(Ranking(d), (std::vector<size_t>{3, 1, 2}));
  EXPECT_THAT(Explained(d, 0), HasSubstr("its image config names linux/arm64, which does not "
                                         "run on host linux/amd64"));
  EXPECT_THAT(Explained(d, 1), HasSubstr("its image config names linux/amd64, which matches"));
}

// Scores saturate: weights at int64's edges never wrap, so the most
// preferred entry stays first.
TEST(Select, ScoresSaturateAtTheEdges) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  const int64_t min = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(SaturatingAdd(max, 100), max);
  EXPECT_EQ(SaturatingAdd(min, -1), min);
  EXPECT_EQ(SaturatingAdd(max, min), -1);
  EXPECT_EQ(SaturatingAdd(5, -7), -2);
  Policy policy;
  policy.prefer = {Rule("a", max), Rule("b", 100), Rule("c", min), Rule("d", -1)};
  std::map<std::string, CompatVerdict> compat;
  compat[Digest(1)] = {.passed = true, .weight = max, .reasons = {}};
  Decision d = Select(MakeIndex({{"linux/amd64"},
                                 {"linux/amd64", {}, {{"a", "1"}, {"b", "1"}}},
                                 {"linux/amd64", {}, {{"c", "1"}, {"d", "1"}}}}),
                      Host("linux/amd64"), policy, {.compat = &compat});
  EXPECT_EQ(Ranking(d), (std::vector<size_t>{1, 0, 2}));
  EXPECT_EQ(d.candidates[0].score, max);
  EXPECT_EQ(d.candidates[2].score, min);
}

// Select keeps ranks and host data between calls on a thread (select.h).
// One index, selected on this thread for hosts in turn, each with and
// without a PreparedHost and under both policies: every answer is the
// host's own, whatever the host before it was.
TEST(Select, HostsInTurnOnOneThreadGetTheirOwnAnswer) {
  const std::vector<E> entries = {{"linux/amd64"},  {"linux/amd64/v3"},        {"linux/arm64"},
                                  {"linux/arm/v7"}, {"linux/amd64", {"avx2"}}, {"LINUX/x86_64/v2"},
                                  {"linux/386"}};
  const struct {
    const char* name;
    HostProfile host;
    PolicyKind kind;
    std::vector<size_t> want;  // eligible positions, best first
    const char* platform;      // Decision::host_platform
  } cases[] = {
      {"amd64/v3, best",
       Host("linux/amd64/v3"),
       PolicyKind::kBest,
       {1, 5, 4, 0, 6},
       "linux/amd64/v3"},
      {"arm64, best", Host("linux/arm64"), PolicyKind::kBest, {2, 3}, "linux/arm64"},
      {"amd64/v3, first match (no level)",
       Host("linux/amd64/v3"),
       PolicyKind::kFirstMatch,
       {0, 4, 6},
       "linux/amd64"},
      {"amd64 without avx2, best", Host("linux/amd64"), PolicyKind::kBest, {0, 6}, "linux/amd64"},
      {"amd64/v2, best", Host("linux/amd64/v2"), PolicyKind::kBest, {5, 0, 6}, "linux/amd64/v2"},
      {"arm/v7, first match", Host("linux/arm/v7"), PolicyKind::kFirstMatch, {3}, "linux/arm/v7"},
      {"amd64/v3 again, best",
       Host("linux/amd64/v3"),
       PolicyKind::kBest,
       {1, 5, 4, 0, 6},
       "linux/amd64/v3"},
  };
  for (bool prepared : {false, true}) {
    for (const auto& c : cases) {
      SelectOptions options;
      options.kind = c.kind;
      const PreparedHost prepared_host(c.host);
      if (prepared) options.prepared_host = &prepared_host;
      Decision d = Select(MakeIndex(entries), c.host, {}, options);
      EXPECT_EQ(Ranking(d), c.want) << c.name << (prepared ? ", prepared" : "");
      EXPECT_EQ(d.host_platform, c.platform) << c.name << (prepared ? ", prepared" : "");
    }
  }
}

// A PreparedHost built from another host object is not used: the answer is
// the one for the host Select is given.
TEST(Select, PreparedHostOfAnotherHostIsIgnored) {
  const HostProfile arm = Host("linux/arm64");
  const HostProfile amd = Host("linux/amd64/v3");
  const PreparedHost prepared_for_arm(arm);
  SelectOptions options;
  options.prepared_host = &prepared_for_arm;
  Decision d = Select(MakeIndex({{"linux/arm64"}, {"linux/amd64"}}), amd, {}, options);
  EXPECT_EQ(Ranking(d), std::vector<size_t>{1});
  EXPECT_EQ(d.host_platform, "linux/amd64/v3");
}

TEST(Select, SingleManifestHasNothingToChoose) {
  auto index = ParseIndex(
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]})");
  ASSERT_TRUE(index.ok());
  Decision d = Select(*std::move(index), Host("linux/amd64"), {});
  EXPECT_TRUE(d.nothing_to_choose);
  EXPECT_EQ(d.selected(), nullptr);
}

}  // namespace
}  // namespace imgsel
