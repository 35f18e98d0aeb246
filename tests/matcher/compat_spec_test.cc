// Parsing compatibility specs: formats, every error class with its place, the budget.
#include "matcher/compat_spec.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "matcher/policy.h"
#include "matcher/yaml_tree.h"
#include "re2/re2.h"
#include "tests/matcher/compat_test_util.h"

namespace imgsel {
namespace {

using testing::OneTermSpec;
using testing::ReadTestData;

std::vector<SpecProblem> Errors(const SpecCheck& check) {
  std::vector<SpecProblem> out;
  for (const SpecProblem& p : check.problems) {
    if (p.severity == SpecProblem::Severity::kError) out.push_back(p);
  }
  return out;
}

TEST(CompatSpecParse, RealisticNfdSpec) {
  SpecCheck check = CheckCompatSpec(ReadTestData("compat/realistic.yaml"));
  ASSERT_TRUE(check.ok()) << FormatSpecProblem("realistic.yaml", check.problems.at(0));
  EXPECT_TRUE(check.problems.empty());
  const CompatSpec& spec = *check.spec;
  EXPECT_EQ(spec.format, SpecFormat::kNfd);
  EXPECT_EQ(spec.version, "v1alpha1");
  ASSERT_EQ(spec.sets.size(), 3u);
  EXPECT_EQ(spec.sets[0].weight, 30);
  EXPECT_EQ(spec.sets[0].tag, "avx512-cuda");
  EXPECT_EQ(spec.sets[0].rules.size(), 4u);
  EXPECT_EQ(spec.sets[0].rules[3].match_any.size(), 2u);
  const FeatureTerm& kernel = spec.sets[0].rules[1].match_features[0];
  EXPECT_EQ(kernel.feature, "kernel.version");
  ASSERT_EQ(kernel.match_expressions.size(), 2u);
  EXPECT_EQ(kernel.match_expressions[0].first, "full");
  EXPECT_EQ(kernel.match_expressions[0].second.type, ValueType::kVersion);
  EXPECT_EQ(kernel.match_expressions[0].second.versions[0], (SpecVersion{5, 15, 0}));
  EXPECT_EQ(kernel.match_expressions[1].second.ints, (std::vector<int64_t>{5, 7}));
  EXPECT_EQ(spec.sets[1].rules[0].match_features[1].match_name->op, MatchOp::kInRegexp);
  EXPECT_EQ(spec.sets[1].rules[0].match_features[1].match_name->regexps.size(), 1u);
}

TEST(CompatSpecParse, JsonSpellingOfNfdSpec) {
  const char* json = R"({"version": "v1alpha1", "compatibilities": [{"weight": 3, "rules": [
      {"name": "k", "matchFeatures": [{"feature": "Kernel.Version",
        "matchExpressions": {"major": {"op": "Ge", "value": ["5"]}}}]}]}]})";
  auto spec = ParseCompatSpec(json, SpecFormat::kNfd, "spec.json");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->sets[0].weight, 3);
  // NFD looks features up lowercased.
  EXPECT_EQ(spec->sets[0].rules[0].match_features[0].feature, "kernel.version");
}

TEST(CompatSpecParse, ScalarValueIsAOneElementList) {
  auto spec = ParseCompatSpec(OneTermSpec("cpu.model", "{vendor_id: {op: In, value: Intel}}"),
                              SpecFormat::kNfd, "s");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->sets[0].rules[0].match_features[0].match_expressions[0].second.values,
            (std::vector<std::string>{"Intel"}));
}

TEST(CompatSpecParse, ProposalFObjectFormIsOneSet) {
  const char* json = R"({"compatibilities": {"nfd": {"kernel.version.major": 6,
      "cpu.cpuid.AVX2": true}, "io.archspec": {"target": "zen3"}}})";
  SpecCheck check = CheckCompatSpec(json);
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check.spec->format, SpecFormat::kKeyValueGroups);
  ASSERT_EQ(check.spec->sets.size(), 1u);
  EXPECT_EQ(check.spec->sets[0].weight, 0);
  ASSERT_EQ(check.spec->sets[0].groups.size(), 3u);
  EXPECT_EQ(check.spec->sets[0].groups[0].key, "nfd.kernel.version.major");
  EXPECT_EQ(check.spec->sets[0].groups[0].value, "6");
  EXPECT_EQ(check.spec->sets[0].groups[1].value, "true");
  EXPECT_EQ(check.spec->sets[0].groups[2].key, "io.archspec.target");
}

TEST(CompatSpecParse, ProposalFListFormHasWeights) {
  SpecCheck check = CheckCompatSpec(ReadTestData("compat/groups.json"));
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check.spec->format, SpecFormat::kKeyValueGroups);
  ASSERT_EQ(check.spec->sets.size(), 2u);
  EXPECT_EQ(check.spec->sets[0].weight, 5);
  EXPECT_EQ(check.spec->sets[0].tag, "mpi");
  EXPECT_EQ(check.spec->sets[0].groups.size(), 4u);
}

// The seed's Proposal F examples as written: commas and a closing brace
// missing, a comma too many. As a +json layer (strict) each is one error at
// the byte where the grammar breaks, with its line and column; the fixed
// text reads.
TEST(CompatSpecParse, StrictJsonPointsAtTheByte) {
  struct Case {
    std::string name;
    std::string text;
    std::string error;  // empty: valid
  };
  const std::vector<Case> cases = {
      {"missing comma",
       "{\"compatibilities\": {\"nfd\": {\n  \"cpu-pstate.turbo\": false\n  "
       "\"kernel-selinux.enabled\": true}}}",
       "f.json:3:3: error: not JSON: expected ',' or '}' (byte 60)"},
      {"trailing comma", "{\"compatibilities\": {\"io.archspec\": {\"target\": \"arm64\",\n  }}}",
       "f.json:2:3: error: not JSON: expected a string key (byte 58)"},
      {"missing closing brace", "{\"compatibilities\": {\"mpi\": {\"version\": \"4.1.6\"}}",
       "not JSON"},
      {"fixed", "{\"compatibilities\": {\"mpi\": {\"version\": \"4.1.6\"}}}", ""},
  };
  for (const Case& c : cases) {
    SpecCheck strict = CheckCompatSpec(c.text, SpecFormat::kKeyValueGroups, /*strict_json=*/true);
    if (c.error.empty()) {
      EXPECT_TRUE(strict.ok()) << c.name;
      continue;
    }
    ASSERT_FALSE(strict.ok()) << c.name;
    ASSERT_EQ(strict.problems.size(), 1u) << c.name;
    EXPECT_NE(FormatSpecProblem("f.json", strict.problems[0]).find(c.error), std::string::npos)
        << c.name << ": " << FormatSpecProblem("f.json", strict.problems[0]);
  }
  EXPECT_TRUE(IsJsonMediaType(kK8sNfdCompatSpecLayerType));
  EXPECT_TRUE(IsJsonMediaType(kOciCompatNfdLayerType));
  EXPECT_FALSE(IsJsonMediaType(kNfdSpecLayerType));
}

TEST(CompatSpecParse, MediaTypes) {
  EXPECT_EQ(SpecFormatForMediaType(kK8sNfdCompatSpecLayerType), SpecFormat::kKeyValueGroups);
  EXPECT_EQ(SpecFormatForMediaType(kNfdSpecLayerType), SpecFormat::kNfd);
  EXPECT_EQ(SpecFormatForMediaType(kOciCompatNfdLayerType), SpecFormat::kNfd);
  EXPECT_EQ(SpecFormatForMediaType(kOciCompatSpecLayerType), SpecFormat::kKeyValueGroups);
  EXPECT_EQ(SpecFormatForMediaType("application/vnd.oci.image.layer.v1.tar+gzip"), std::nullopt);
}

struct ErrorCase {
  std::string name;
  std::string spec;
  int line;
  int column;
  std::string message_part;
};

class CompatSpecErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(CompatSpecErrors, ReportsPlace) {
  const ErrorCase& c = GetParam();
  SpecCheck check = CheckCompatSpec(c.spec, SpecFormat::kAuto);
  EXPECT_FALSE(check.ok());
  auto errors = Errors(check);
  ASSERT_FALSE(errors.empty());
  bool found = false;
  for (const SpecProblem& p : errors) {
    if (p.message.find(c.message_part) != std::string::npos) {
      found = true;
      EXPECT_EQ(p.pos.line, c.line) << p.message;
      EXPECT_EQ(p.pos.column, c.column) << p.message;
    }
  }
  EXPECT_TRUE(found) << "no error containing \"" << c.message_part
                     << "\"; first: " << errors[0].message;
}

// In OneTermSpec the expressions mapping opens at line 7, column 25.
std::vector<ErrorCase> ErrorCases() {
  auto expr = [](const std::string& e) { return OneTermSpec("f", absl::StrCat("{x: ", e, "}")); };
  return {
      {"YamlSyntax", "version: v1alpha1\ncompatibilities: [\n", 3, 1, "YAML"},
      {"NotAMapping", "- a\n- b\n", 1, 1, "mapping"},
      {"MissingVersion", "compatibilities:\n- rules: []\n", 1, 1, "missing \"version\""},
      {"WrongVersion", "version: v2\ncompatibilities:\n- rules: []\n", 1, 10,
       "unsupported version"},
      {"MissingCompatibilities", "version: v1alpha1\n", 1, 1, "missing \"compatibilities\""},
      {"CompatibilitiesNotAList", "version: v1alpha1\ncompatibilities: 3\n", 2, 18,
       "must be a list"},
      {"SetWithoutRules", "version: v1alpha1\ncompatibilities:\n- weight: 1\n", 3, 3,
       "without \"rules\""},
      {"WeightNotInteger", "version: v1alpha1\ncompatibilities:\n- weight: ten\n  rules: []\n", 3,
       11, "\"weight\" must be an integer"},
      {"RuleWithoutName", "version: v1alpha1\ncompatibilities:\n- rules:\n  - matchFeatures: []\n",
       4, 5, "without \"name\""},
      {"TermWithoutFeature",
       "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n    matchFeatures:\n"
       "    - matchExpressions: {}\n",
       6, 7, "without \"feature\""},
      {"UnknownOp", expr("{op: Between, value: [1, 2]}"), 7, 34, "unknown op \"Between\""},
      {"MissingOp", expr("{value: [1]}"), 7, 29, "without \"op\""},
      {"InWithoutValues", expr("{op: In}"), 7, 34, "op In takes at least one value, got 0"},
      {"NotInWithoutValues", expr("{op: NotIn, value: []}"), 7, 34, "op NotIn takes at least one"},
      {"InRegexpWithoutValues", expr("{op: InRegexp}"), 7, 34, "op InRegexp takes at least one"},
      {"ExistsWithValue", expr("{op: Exists, value: [a]}"), 7, 49,
       "op Exists takes no values, got 1"},
      {"DoesNotExistWithValue", expr("{op: DoesNotExist, value: [a]}"), 7, 55,
       "op DoesNotExist takes no values"},
      {"IsTrueWithValue", expr("{op: IsTrue, value: [a]}"), 7, 49, "op IsTrue takes no values"},
      {"IsFalseWithValue", expr("{op: IsFalse, value: [a]}"), 7, 50, "op IsFalse takes no values"},
      {"GtTwoValues", expr("{op: Gt, value: [1, 2]}"), 7, 45,
       "op Gt takes exactly one value, got 2"},
      {"GeNoValue", expr("{op: Ge}"), 7, 34, "op Ge takes exactly one value, got 0"},
      {"LtTwoValues", expr("{op: Lt, value: [1, 2]}"), 7, 45, "op Lt takes exactly one value"},
      {"LeTwoValues", expr("{op: Le, value: [1, 2]}"), 7, 45, "op Le takes exactly one value"},
      {"GtLtOneValue", expr("{op: GtLt, value: [1]}"), 7, 47,
       "op GtLt takes exactly two values, got 1"},
      {"GeLeThreeValues", expr("{op: GeLe, value: [1, 2, 3]}"), 7, 47, "op GeLe takes exactly two"},
      {"GtLtBoundsReversed", expr("{op: GtLt, value: [5, 2]}"), 7, 47, "must be less than"},
      {"NotAnInteger", expr("{op: Gt, value: [5.1]}"), 7, 45, "\"5.1\" is not an integer"},
      {"NotAVersion", expr("{op: Ge, value: [five], type: version}"), 7, 45,
       "\"five\" is not a version"},
      {"VersionWithFourParts", expr("{op: Ge, value: [1.2.3.4], type: version}"), 7, 45,
       "not a version"},
      {"UnknownType", expr("{op: Gt, value: [1], type: semver}"), 7, 56, "unknown type \"semver\""},
      {"RegexpDoesNotCompile", expr("{op: InRegexp, value: [\"(AVX\"]}"), 7, 51,
       "does not compile"},
      {"ValueNotAList", expr("{op: In, value: {a: b}}"), 7, 45, "must be a list of strings"},
      {"DuplicateElement", OneTermSpec("f", "{x: {op: Exists}, x: {op: Exists}}"), 7, 43,
       "duplicate element \"x\""},
      {"MatchAnyNotAList",
       "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n    matchAny: {}\n", 5, 15,
       "\"matchAny\" must be a list"},
      {"GroupValueNotScalar", R"({"compatibilities": {"g": {"k": [1]}}})", 1, 33,
       "must be a string, number or boolean"},
      {"GroupNotAMapping", R"({"compatibilities": {"g": 3}})", 1, 27, "must map keys to values"},
      {"DuplicateKey",
       "version: v1alpha1\ncompatibilities:\n- weight: 1\n  weight: 99\n  rules:\n  - name: r\n"
       "    matchFeatures:\n    - feature: f\n      matchExpressions: {x: {op: Exists}}\n",
       4, 3, "duplicate key \"weight\""},
      {"DuplicateKeyInJson", R"({"compatibilities": {"g": {"k": "1", "k": "2"}}})", 1, 38,
       "duplicate key \"k\""},
      {"NotUtf8", "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: \"bad\xffname\"\n", 4,
       15, "not UTF-8 (byte 58)"},
      {"SecondDocument",
       "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n    matchFeatures:\n"
       "    - feature: f\n      matchExpressions: {x: {op: Exists}}\n---\nversion: v1alpha1\n",
       8, 1, "a second YAML document"},
      {"ContentAfterTheEnd", "version: v1alpha1\ncompatibilities: []\n...\nversion: v1alpha1\n", 4,
       1, "a second YAML document"},
  };
}

INSTANTIATE_TEST_SUITE_P(All, CompatSpecErrors, ::testing::ValuesIn(ErrorCases()),
                         [](const auto& info) { return info.param.name; });

TEST(CompatSpecParse, ListsEveryProblemNotJustTheFirst) {
  SpecCheck check = CheckCompatSpec(ReadTestData("compat/invalid.yaml"));
  EXPECT_FALSE(check.ok());
  auto errors = Errors(check);
  // weight, Gt count, Exists count, version, regexp, unknown op.
  ASSERT_EQ(errors.size(), 6u);
  EXPECT_EQ(errors[0].pos.line, 4);
  EXPECT_EQ(errors[5].pos.line, 19);
  EXPECT_NE(errors[5].message.find("Between"), std::string::npos);
}

TEST(CompatSpecParse, UnknownKeysAreWarnings) {
  std::string spec =
      OneTermSpec("system.osrelease", "{x: {op: Exists, flavour: 1}}") + "flavour: x\n";
  SpecCheck check = CheckCompatSpec(spec);
  ASSERT_TRUE(check.ok());
  ASSERT_EQ(check.problems.size(), 2u);
  EXPECT_EQ(check.problems[0].severity, SpecProblem::Severity::kWarning);
  EXPECT_NE(check.problems[0].message.find("flavour"), std::string::npos);
}

TEST(CompatSpecParse, ParseCompatSpecJoinsErrorsWithSourceAndPlace) {
  auto spec = ParseCompatSpec(OneTermSpec("f", "{x: {op: Gt, value: [1, 2]}}"), SpecFormat::kNfd,
                              "spec.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find("spec.yaml:7:"), absl::string_view::npos) << spec.status();
}

// Nodes put this message into fallback reasons and logs: it stays short
// however many errors a spec holds.
TEST(CompatSpecParse, ParseCompatSpecShowsTheFirstTenErrors) {
  std::string values;
  for (int i = 0; i < 1000; ++i) absl::StrAppend(&values, i ? ", " : "", "[]");
  auto spec =
      ParseCompatSpec(OneTermSpec("f", absl::StrCat("{x: {op: In, value: [", values, "]}}")),
                      SpecFormat::kNfd, "spec.yaml");
  ASSERT_FALSE(spec.ok());
  const std::string message(spec.status().message());
  EXPECT_EQ(std::count(message.begin(), message.end(), ';'), 10) << message;
  EXPECT_NE(message.find("; and 990 more errors"), std::string::npos) << message;
  EXPECT_LT(message.size(), 2000u);
}

// ---- the budget ----
//
// Every limit at its edge: the spec exactly at the limit is read, one step
// over is refused with an error naming the limit. The same check runs in
// `imgsel validate`, `imgsel attach` and on every node (ParseCompatSpec).

// A valid spec of exactly `bytes` bytes (a comment fills it up).
std::string SpecOfBytes(size_t bytes) {
  std::string s = "version: v1alpha1\ncompatibilities:\n- rules: [{name: r, matchFeatures: []}]\n#";
  s.append(bytes - s.size() - 1, 'x');
  return s + "\n";
}

// A valid spec of exactly `nodes` YAML nodes: 15 for the spec (the root map,
// 7 keys, 4 scalars and maps, `[]`, the padding key and its list), the rest
// in an unknown key's list (a warning, not an error).
std::string SpecOfNodes(size_t nodes) {
  std::string s =
      "version: v1alpha1\ncompatibilities:\n- rules: [{name: r, matchFeatures: []}]\npadding: [";
  for (size_t i = 15; i < nodes; ++i) s += i == 15 ? "a" : ",a";
  return s + "]\n";
}

std::string ManySets(size_t n) {
  std::string s = "version: v1alpha1\ncompatibilities:\n";
  for (size_t i = 0; i < n; ++i) s += "- rules: [{name: r, matchFeatures: []}]\n";
  return s;
}

std::string ManyRules(size_t n) {
  std::string s = "version: v1alpha1\ncompatibilities:\n- rules:\n";
  for (size_t i = 0; i < n; ++i) s += "  - {name: r, matchFeatures: []}\n";
  return s;
}

std::string ManyExpressions(size_t n) {
  std::string body = "{";
  for (size_t i = 0; i < n; ++i) absl::StrAppend(&body, i ? ", " : "", "e", i, ": {op: Exists}");
  body += "}";
  return OneTermSpec("f", body);
}

std::string ManyValues(size_t n) {
  std::string list = "[";
  for (size_t i = 0; i < n; ++i) absl::StrAppend(&list, i ? "," : "", "v", i);
  list += "]";
  return OneTermSpec("f", absl::StrCat("{x: {op: In, value: ", list, "}}"));
}

// One InRegexp expression with these patterns (single-quoted: no escapes).
std::string RegexpSpec(const std::vector<std::string>& patterns) {
  std::string list;
  for (const std::string& p : patterns)
    absl::StrAppend(&list, list.empty() ? "" : ", ", "'", p, "'");
  return OneTermSpec("cpu.model", absl::StrCat("{vendor_id: {op: InRegexp, value: [", list, "]}}"));
}

std::vector<std::string> ManyRegexps(size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) out.push_back(absl::StrCat("^v", i));
  return out;
}

// RE2's own answer, with the budget's max_mem, to how long a literal may be.
size_t LongestLiteralWithinRegexpMemory() {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(kMaxCompatRegexpMemory);
  auto fits = [&options](size_t n) { return RE2(std::string(n, 'a'), options).ok(); };
  size_t lo = 1;
  size_t hi = 1 << 20;
  while (lo < hi) {
    const size_t mid = (lo + hi + 1) / 2;
    if (fits(mid)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// Literal patterns whose RE2 programs add up to exactly `total` instructions.
std::vector<std::string> RegexpsOfProgramSize(int64_t total) {
  auto size_of = [](size_t n) { return RE2(std::string(n, 'a')).ProgramSize(); };
  const int64_t overhead = size_of(1) - 1;  // a literal of n bytes: n + overhead
  std::vector<std::string> out;
  while (total > 0) {
    const int64_t take = std::min<int64_t>(total, 4096);
    out.push_back(std::string(static_cast<size_t>(take - overhead), 'a'));
    total -= take;
  }
  return out;
}

std::string NfdWeight(const std::string& weight) {
  return absl::StrCat("version: v1alpha1\ncompatibilities:\n- weight: ", weight,
                      "\n  rules: [{name: r, matchFeatures: []}]\n");
}

std::string GroupsWeight(const std::string& weight) {
  return absl::StrCat(R"({"compatibilities": [{"weight": )", weight,
                      R"(, "groups": {"kernel": {"version.major": 6}}}]})");
}

struct BudgetUse {
  size_t bytes = 0;
  size_t nodes = 0;
  size_t expressions = 0;
  size_t regexps = 0;
  int64_t program_size = 0;
};

BudgetUse UseOf(const std::string& text) {
  BudgetUse use;
  use.bytes = text.size();
  YamlReadResult yaml = ReadYamlTree(text, kMaxCompatYamlNodes);
  if (yaml.tree) use.nodes = yaml.tree->node_count();
  SpecCheck check = CheckCompatSpec(text);
  EXPECT_TRUE(check.ok());
  if (!check.ok()) return use;
  auto count = [&use](const MatchExpression& e) {
    ++use.expressions;
    for (const auto& re : e.regexps) {
      ++use.regexps;
      use.program_size += re->ProgramSize();
    }
  };
  auto terms = [&count](const std::vector<FeatureTerm>& ts) {
    for (const FeatureTerm& t : ts) {
      for (const auto& [element, e] : t.match_expressions) count(e);
      if (t.match_name) count(*t.match_name);
    }
  };
  for (const CompatSet& s : check.spec->sets) {
    use.expressions += s.groups.size();
    for (const CompatRule& r : s.rules) {
      terms(r.match_features);
      for (const auto& any : r.match_any) terms(any);
    }
  }
  return use;
}

struct BudgetEdge {
  std::string name;
  std::string at_limit;  // read
  std::string over;      // refused
  std::string message;   // in the error over the limit
  int line;              // where that error is
};

void PrintTo(const BudgetEdge& edge, std::ostream* os) { *os << edge.name; }

std::vector<BudgetEdge> BudgetEdges() {
  const size_t literal = LongestLiteralWithinRegexpMemory();
  std::vector<std::string> program = RegexpsOfProgramSize(kMaxCompatRegexpProgramSize);
  std::vector<std::string> program_over = program;
  program_over.back() += "a";
  const std::string max_weight = absl::StrCat(kMaxPreferenceWeight);
  const std::string max_weight_over = absl::StrCat(kMaxPreferenceWeight + 1);
  const std::string min_weight = absl::StrCat(-kMaxPreferenceWeight);
  const std::string min_weight_over = absl::StrCat(-kMaxPreferenceWeight - 1);
  return {
      {"Bytes", SpecOfBytes(kMaxCompatSpecBytes), SpecOfBytes(kMaxCompatSpecBytes + 1),
       "bytes, more than the limit of 262144 bytes of one spec", 1},
      {"YamlNodes", SpecOfNodes(kMaxCompatYamlNodes), SpecOfNodes(kMaxCompatYamlNodes + 1),
       "more than 16384 YAML nodes, the limit of one spec", 4},
      {"Sets", ManySets(kMaxCompatSets), ManySets(kMaxCompatSets + 1),
       "more than 256 compatibility sets, the limit of one spec", 259},
      {"RulesPerSet", ManyRules(kMaxCompatRulesPerSet), ManyRules(kMaxCompatRulesPerSet + 1),
       "more than 256 rules in one set, the limit", 260},
      {"Expressions", ManyExpressions(kMaxCompatExpressions),
       ManyExpressions(kMaxCompatExpressions + 1),
       "more than 1024 expressions, the limit of one spec", 7},
      {"ValuesPerExpression", ManyValues(kMaxCompatValues), ManyValues(kMaxCompatValues + 1),
       "more than 1024 values, the limit of one expression", 7},
      {"Regexps", RegexpSpec(ManyRegexps(kMaxCompatRegexps)),
       RegexpSpec(ManyRegexps(kMaxCompatRegexps + 1)),
       "more than 64 regexps, the limit of one spec", 7},
      {"RegexpMemory", RegexpSpec({std::string(literal, 'a')}),
       RegexpSpec({std::string(literal + 1, 'a')}),
       "bytes) needs more than 262144 bytes to compile, the limit of one regexp", 7},
      {"RegexpProgramSize", RegexpSpec(program), RegexpSpec(program_over),
       "regexps compile to more than 32768 instructions, the limit of one spec", 7},
      {"MaxWeight", NfdWeight(max_weight), NfdWeight(max_weight_over),
       "\"weight\" 1000001 is out of range (-1000000..1000000)", 3},
      {"MinWeight", NfdWeight(min_weight), NfdWeight(min_weight_over),
       "\"weight\" -1000001 is out of range (-1000000..1000000)", 3},
      {"MaxWeightOfGroups", GroupsWeight(max_weight), GroupsWeight(max_weight_over),
       "\"weight\" 1000001 is out of range", 1},
      {"MinWeightOfGroups", GroupsWeight(min_weight), GroupsWeight(min_weight_over),
       "\"weight\" -1000001 is out of range", 1},
  };
}

class CompatSpecBudget : public ::testing::TestWithParam<BudgetEdge> {};

TEST_P(CompatSpecBudget, AtTheLimitIsReadOneOverIsRefused) {
  const BudgetEdge& edge = GetParam();
  SpecCheck at = CheckCompatSpec(edge.at_limit);
  EXPECT_TRUE(at.ok()) << (Errors(at).empty() ? "" : Errors(at)[0].message);
  SpecCheck over = CheckCompatSpec(edge.over);
  ASSERT_FALSE(over.ok());
  std::vector<SpecProblem> errors = Errors(over);
  ASSERT_EQ(errors.size(), 1u) << errors[0].message;
  EXPECT_NE(errors[0].message.find(edge.message), std::string::npos) << errors[0].message;
  EXPECT_EQ(errors[0].pos.line, edge.line) << "an error over the budget says where";
}

INSTANTIATE_TEST_SUITE_P(All, CompatSpecBudget, ::testing::ValuesIn(BudgetEdges()),
                         [](const auto& info) { return info.param.name; });

TEST(CompatSpecBudget, WeightsAreKeptExactlyAtTheEdges) {
  EXPECT_EQ(CheckCompatSpec(NfdWeight("1000000")).spec->sets[0].weight, 1000000);
  EXPECT_EQ(CheckCompatSpec(NfdWeight("-1000000")).spec->sets[0].weight, -1000000);
  // What the report of the issue pushed: int64's maximum, and one past it.
  EXPECT_FALSE(CheckCompatSpec(NfdWeight("9223372036854775807")).ok());
  EXPECT_FALSE(CheckCompatSpec(NfdWeight("9223372036854775808")).ok());
}

// The edges above are where they say they are.
TEST(CompatSpecBudget, TheRegexpEdgesAreExact) {
  BudgetUse program = UseOf(RegexpSpec(RegexpsOfProgramSize(kMaxCompatRegexpProgramSize)));
  EXPECT_EQ(program.program_size, kMaxCompatRegexpProgramSize);
  BudgetUse count = UseOf(RegexpSpec(ManyRegexps(kMaxCompatRegexps)));
  EXPECT_EQ(count.regexps, kMaxCompatRegexps);
  EXPECT_EQ(UseOf(SpecOfNodes(kMaxCompatYamlNodes)).nodes, kMaxCompatYamlNodes);
}

// 2.4 KB of nested aliases that expanded to 810,000 terms, which validate
// called valid and a node kept in memory: refused at the first anchor,
// before anything is expanded.
TEST(CompatSpecBudget, AliasBombIsRefusedAtItsFirstAnchor) {
  std::string bomb =
      "version: v1alpha1\nt: &t {feature: cpu.cpuid, matchExpressions: {AVX: {op: Exists}}}\n";
  std::string previous = "t";
  for (int level = 0; level < 6; ++level) {
    const std::string name = absl::StrCat("l", level);
    absl::StrAppend(&bomb, name, ": &", name, " [");
    for (int i = 0; i < 10; ++i) absl::StrAppend(&bomb, i ? ", *" : "*", previous);
    bomb += "]\n";
    previous = name;
  }
  absl::StrAppend(&bomb, "compatibilities: [{rules: [{name: r, matchAny: [{matchFeatures: *",
                  previous, "}]}]}]\n");
  SpecCheck check = CheckCompatSpec(bomb);
  ASSERT_FALSE(check.ok());
  ASSERT_EQ(check.problems.size(), 1u);
  EXPECT_EQ(check.problems[0].message,
            "YAML anchor \"&t\": a spec may not use anchors (&) or aliases (*); write the node "
            "out in full");
  EXPECT_EQ(check.problems[0].pos.line, 2);
  EXPECT_EQ(check.problems[0].pos.column, 4);
}

TEST(CompatSpecBudget, AnchorsAreRefusedWhereverTheyStand) {
  const std::pair<std::string, int> cases[] = {
      {"version: &v v1alpha1\ncompatibilities: []\n", 1},
      {"version: v1alpha1\ncompatibilities: &c\n- rules: []\n", 2},
      {"version: v1alpha1\ncompatibilities:\n- &set {rules: []}\n", 3},
      {R"({"version": "v1alpha1", "compatibilities": [&x {"rules": []}]})", 1},
  };
  for (const auto& [spec, line] : cases) {
    SpecCheck check = CheckCompatSpec(spec);
    ASSERT_FALSE(check.ok()) << spec;
    EXPECT_NE(Errors(check)[0].message.find("may not use anchors (&) or aliases (*)"),
              std::string::npos)
        << spec;
    EXPECT_EQ(Errors(check)[0].pos.line, line) << spec;
  }
}

// 100 values of `\pL{200}` (1.4 KB) took 9 s and 235 MB to compile: the
// first pattern now stops at its memory limit, and nothing after it is read.
TEST(CompatSpecBudget, RegexpBombIsRefusedAtItsFirstPattern) {
  std::vector<std::string> patterns(100, "\\pL{200}");
  SpecCheck check = CheckCompatSpec(RegexpSpec(patterns));
  ASSERT_FALSE(check.ok());
  ASSERT_EQ(check.problems.size(), 1u);
  EXPECT_EQ(check.problems[0].message,
            "regexp \"\\pL{200}\" needs more than 262144 bytes to compile, the limit of one "
            "regexp (in set #1, rule \"r\", cpu.model vendor_id); the rest is not read");
}

TEST(CompatSpecBudget, ErrorsNameTheSetRuleFeatureAndElement) {
  std::string regexps;
  for (size_t i = 0; i <= kMaxCompatRegexps; ++i)
    absl::StrAppend(&regexps, i ? ", " : "", "'^", i, "'");
  const std::string spec = absl::StrCat(
      "version: v1alpha1\ncompatibilities:\n- rules: [{name: first, matchFeatures: []}]\n"
      "- rules:\n  - matchFeatures:\n    - feature: cpu.model\n      matchExpressions:\n"
      "        vendor_id: {op: InRegexp, value: [",
      regexps, "]}\n    name: second\n");
  SpecCheck check = CheckCompatSpec(spec);
  ASSERT_FALSE(check.ok());
  EXPECT_NE(Errors(check)[0].message.find(
                "(in set #2, rule \"second\", cpu.model vendor_id); the rest is not read"),
            std::string::npos)
      << Errors(check)[0].message;
  EXPECT_EQ(Errors(check)[0].pos.line, 8);

  SpecCheck groups = CheckCompatSpec(absl::StrCat(
      R"({"compatibilities": [{"groups": {"kernel": {"version.major": 6}}}, {"weight": 1000001, )",
      R"("groups": {"kernel": {"version.major": 6}}}]})"));
  ASSERT_FALSE(groups.ok());
  EXPECT_NE(Errors(groups)[0].message.find("(in set #2)"), std::string::npos)
      << Errors(groups)[0].message;
}

// Nodes parse with ParseCompatSpec: the same limit, with the layer named.
TEST(CompatSpecBudget, NodesGetTheSameErrorWithTheLayerNamed) {
  auto spec =
      ParseCompatSpec(SpecOfNodes(kMaxCompatYamlNodes + 1), SpecFormat::kNfd, "sha256:0123");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find("sha256:0123:4:"), absl::string_view::npos)
      << spec.status();
  EXPECT_NE(spec.status().message().find("more than 16384 YAML nodes, the limit of one spec"),
            absl::string_view::npos)
      << spec.status();
}

// The limits leave realistic specs at least a factor of 10 of room.
TEST(CompatSpecBudget, RealisticSpecsStayWellInside) {
  for (const char* file : {"compat/realistic.yaml", "compat/groups.json"}) {
    BudgetUse use = UseOf(ReadTestData(file));
    EXPECT_GT(use.nodes, 0u) << file;
    EXPECT_LT(use.bytes * 10, kMaxCompatSpecBytes) << file;
    EXPECT_LT(use.nodes * 10, kMaxCompatYamlNodes) << file;
    EXPECT_LT(use.expressions * 10, kMaxCompatExpressions) << file;
    EXPECT_LT(use.regexps * 10, kMaxCompatRegexps) << file;
    EXPECT_LT(use.program_size * 10, kMaxCompatRegexpProgramSize) << file;
  }
}

TEST(CompatSpecBounds, DeepNestingIsAnErrorNotACrash) {
  std::string deep = "version: v1alpha1\ncompatibilities: " + std::string(100000, '[') +
                     std::string(100000, ']') + "\n";
  SpecCheck check = CheckCompatSpec(deep);
  EXPECT_FALSE(check.ok());
}

// ---- values ----

TEST(SpecValues, Integers) {
  EXPECT_EQ(ParseSpecInt("42"), 42);
  EXPECT_EQ(ParseSpecInt("-7"), -7);
  EXPECT_EQ(ParseSpecInt("+7"), 7);
  EXPECT_EQ(ParseSpecInt("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(ParseSpecInt("-9223372036854775808"), INT64_MIN);
  EXPECT_EQ(ParseSpecInt("9223372036854775808"), std::nullopt);
  for (const char* bad : {"", "-", "1.0", " 1", "1 ", "0x10", "abc"}) {
    EXPECT_EQ(ParseSpecInt(bad), std::nullopt) << bad;
  }
}

TEST(SpecValues, Versions) {
  EXPECT_EQ(ParseSpecVersion("6.8.0-45-generic"), (SpecVersion{6, 8, 0}));
  EXPECT_EQ(ParseSpecVersion("v1.2.3+build.7"), (SpecVersion{1, 2, 3}));
  EXPECT_EQ(ParseSpecVersion("5"), (SpecVersion{5, 0, 0}));
  EXPECT_EQ(ParseSpecVersion("22.04"), (SpecVersion{22, 4, 0}));
  for (const char* bad :
       {"", "v", "1.", ".1", "1.2.3.4", "1..2", "a.b", "1.2-", "1.2+", "1.2-a..b"}) {
    EXPECT_EQ(ParseSpecVersion(bad), std::nullopt) << bad;
  }
  EXPECT_LT(*ParseSpecVersion("5.4.0"), *ParseSpecVersion("5.15"));
}

}  // namespace
}  // namespace imgsel

namespace imgsel {
namespace {

// cpu.cpuid elements are checked against the one feature table: another
// spelling than NFD's, or a name no table knows, matches no host and says so.
// Feature names and the elements of features whose elements NFD fixes are
// checked against NFD's tables: a name no host has is a warning naming it
// (and the closest known name), never an error.
TEST(CompatSpecParse, FeatureAndElementNamesAreCheckedAgainstNfdsTables) {
  const struct {
    const char* feature;
    const char* element;
    const char* warning;  // empty: none
  } cases[] = {
      {"cpu.cpuid", "AVX2", ""},
      {"CPU.CPUID", "AVX2", ""},
      {"rule.matched", "anything", ""},
      {"local.feature", "vendor.example/fpga", ""},
      {"system.osrelease", "VERSION_ID", ""},
      {"kernel.version", "major", ""},
      {"cpu.cpuids", "AVX2",
       "feature \"cpu.cpuids\" is no feature NFD publishes: it matches no "
       "host; did you mean \"cpu.cpuid\"?"},
      {"gpu.nvidia", "driver", "feature \"gpu.nvidia\" is no feature NFD publishes"},
      {"kernel.version", "patch",
       "kernel.version has no element \"patch\" (it has full, major, "
       "minor, revision)"},
      {"memory.numa", "numa", "memory.numa has no element \"numa\""},
  };
  for (const auto& c : cases) {
    SpecCheck check = CheckCompatSpec(
        OneTermSpec(c.feature, absl::StrCat("{", c.element, ": {op: Exists}}")), SpecFormat::kNfd);
    ASSERT_TRUE(check.ok()) << c.feature;
    std::string warnings;
    for (const SpecProblem& p : check.problems) warnings += p.message;
    if (*c.warning == '\0') {
      EXPECT_TRUE(warnings.empty()) << c.feature << ": " << warnings;
    } else {
      EXPECT_NE(warnings.find(c.warning), std::string::npos) << c.feature << ": " << warnings;
    }
  }
}

TEST(CompatSpecParse, CpuidElementsAreCheckedAgainstTheFeatureTable) {
  const struct {
    const char* element;
    const char* warning;  // empty: none
  } cases[] = {
      {"AVX2", ""},
      {"SSE42", ""},
      {"FMA3", ""},
      {"AVX512F", ""},
      {"SSE4.2", "is spelled \"SSE42\" by NFD"},
      {"FMA", "is spelled \"FMA3\" by NFD"},
      {"avx2", "is spelled \"AVX2\" by NFD"},
      {"WARPDRIVE", "is no CPU feature imgsel's table knows"},
  };
  for (const auto& c : cases) {
    const std::string spec = absl::StrCat(
        "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n    matchFeatures:\n"
        "    - feature: cpu.cpuid\n      matchExpressions:\n        ",
        c.element, ": {op: Exists}\n");
    SpecCheck check = CheckCompatSpec(spec, SpecFormat::kNfd);
    std::string warnings;
    for (const SpecProblem& p : check.problems) {
      ASSERT_EQ(p.severity, SpecProblem::Severity::kWarning) << c.element << ": " << p.message;
      warnings += p.message;
    }
    if (*c.warning == '\0') {
      EXPECT_TRUE(warnings.empty()) << c.element << ": " << warnings;
    } else {
      EXPECT_NE(warnings.find(c.warning), std::string::npos) << c.element << ": " << warnings;
    }
  }
}

}  // namespace
}  // namespace imgsel
