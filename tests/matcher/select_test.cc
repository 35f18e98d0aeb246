#include "matcher/select.h"

#include <algorithm>
#include <climits>
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
// DESIGN.md (score desc, platform rank asc, features desc, os.features desc,
// position asc), on large indexes with few and with many distinct keys.
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
      if (a->features_satisfied != b->features_satisfied) {
        return a->features_satisfied > b->features_satisfied;
      }
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
