// Parsing compatibility specs: formats, every error class with its place, bounds.
#include "matcher/compat_spec.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
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

TEST(CompatSpecParse, MediaTypes) {
  EXPECT_EQ(SpecFormatForMediaType(kNfdSpecMediaType), SpecFormat::kNfd);
  EXPECT_EQ(SpecFormatForMediaType(kOciNfdProfileMediaType), SpecFormat::kNfd);
  EXPECT_EQ(SpecFormatForMediaType(kOciKeyValueSpecMediaType), SpecFormat::kKeyValueGroups);
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
  std::string spec = OneTermSpec("f", "{x: {op: Exists, flavour: 1}}") + "flavour: x\n";
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

// ---- bounds ----

std::string ManySets(size_t n) {
  std::string s = "version: v1alpha1\ncompatibilities:\n";
  for (size_t i = 0; i < n; ++i) s += "- rules: [{name: r, matchFeatures: []}]\n";
  return s;
}

TEST(CompatSpecBounds, SetCount) {
  EXPECT_TRUE(CheckCompatSpec(ManySets(kMaxCompatSets)).ok());
  SpecCheck over = CheckCompatSpec(ManySets(kMaxCompatSets + 1));
  ASSERT_FALSE(over.ok());
  EXPECT_NE(Errors(over).back().message.find("more than 256 compatibility sets"),
            std::string::npos);
  EXPECT_EQ(Errors(over).back().pos.line, 3 + static_cast<int>(kMaxCompatSets));
}

std::string ManyRules(size_t n) {
  std::string s = "version: v1alpha1\ncompatibilities:\n- rules:\n";
  for (size_t i = 0; i < n; ++i) s += "  - {name: r, matchFeatures: []}\n";
  return s;
}

TEST(CompatSpecBounds, RulesPerSet) {
  EXPECT_TRUE(CheckCompatSpec(ManyRules(kMaxCompatRulesPerSet)).ok());
  SpecCheck over = CheckCompatSpec(ManyRules(kMaxCompatRulesPerSet + 1));
  ASSERT_FALSE(over.ok());
  EXPECT_NE(Errors(over).back().message.find("rules in one set"), std::string::npos);
}

std::string ManyExpressions(size_t n) {
  std::string body = "{";
  for (size_t i = 0; i < n; ++i) absl::StrAppend(&body, i ? ", " : "", "e", i, ": {op: Exists}");
  body += "}";
  return OneTermSpec("f", body);
}

TEST(CompatSpecBounds, ExpressionsInAll) {
  EXPECT_TRUE(CheckCompatSpec(ManyExpressions(kMaxCompatExpressions)).ok());
  SpecCheck over = CheckCompatSpec(ManyExpressions(kMaxCompatExpressions + 1));
  ASSERT_FALSE(over.ok());
  EXPECT_NE(Errors(over).back().message.find("more than 1024 expressions"), std::string::npos);
}

std::string ManyValues(size_t n) {
  std::string list = "[";
  for (size_t i = 0; i < n; ++i) absl::StrAppend(&list, i ? "," : "", "v", i);
  list += "]";
  return OneTermSpec("f", absl::StrCat("{x: {op: In, value: ", list, "}}"));
}

TEST(CompatSpecBounds, ValuesPerExpression) {
  EXPECT_TRUE(CheckCompatSpec(ManyValues(kMaxCompatValues)).ok());
  SpecCheck over = CheckCompatSpec(ManyValues(kMaxCompatValues + 1));
  ASSERT_FALSE(over.ok());
  EXPECT_NE(Errors(over)[0].message.find("more than 1024 values"), std::string::npos);
}

TEST(CompatSpecBounds, DocumentSize) {
  std::string big = ReadTestData("compat/realistic.yaml");
  big += "# " + std::string(kMaxCompatSpecBytes, 'x') + "\n";
  SpecCheck check = CheckCompatSpec(big);
  ASSERT_FALSE(check.ok());
  EXPECT_NE(Errors(check)[0].message.find("more than the limit"), std::string::npos);
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
