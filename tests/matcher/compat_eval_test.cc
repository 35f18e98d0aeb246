// Evaluating specs with NFD semantics: every operator, every kind of feature,
// matchAny, weights, Proposal F groups and the rendered result tree.
#include "matcher/compat_eval.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "matcher/nfd_labels.h"
#include "oci/json_writer.h"
#include "tests/matcher/compat_test_util.h"

namespace imgsel {
namespace {

using testing::LoadHost;
using testing::OneTermSpec;
using testing::ReadTestData;

HostProfile OperatorHost() {
  HostProfile host;
  host.nfd.attributes["f"] = {{"num", "5"},     {"neg", "-3"},   {"ver", "6.8.0-45-generic"},
                              {"str", "Intel"}, {"yes", "true"}, {"no", "false"},
                              {"word", "abc"},  {"empty", ""}};
  host.nfd.flags["cpu.cpuid"] = {"AVX", "AVX2", "SSE4.2"};
  host.nfd.instances["pci.device"] = {
      {{"vendor", "8086"}, {"class", "0200"}},
      {{"vendor", "10de"}, {"class", "0302"}},
  };
  return host;
}

bool Matches(const std::string& spec_text, const HostProfile& host) {
  auto spec = ParseCompatSpec(spec_text, SpecFormat::kNfd, "test");
  EXPECT_TRUE(spec.ok()) << spec.status();
  if (!spec.ok()) return false;
  return EvaluateCompatSpec(*spec, host).matched();
}

struct OpCase {
  std::string name;
  std::string element;
  std::string expression;
  bool want;
};

class CompatOperators : public ::testing::TestWithParam<OpCase> {};

TEST_P(CompatOperators, OnAttributes) {
  const OpCase& c = GetParam();
  std::string spec = OneTermSpec("f", absl::StrCat("{", c.element, ": ", c.expression, "}"));
  EXPECT_EQ(Matches(spec, OperatorHost()), c.want) << c.element << ": " << c.expression;
}

std::vector<OpCase> OpCases() {
  return {
      {"InMatch", "str", "{op: In, value: [AMD, Intel]}", true},
      {"InNoMatch", "str", "{op: In, value: [AMD]}", false},
      {"InMissingKey", "nope", "{op: In, value: [AMD]}", false},
      {"InIsCaseSensitive", "str", "{op: In, value: [intel]}", false},
      {"InEmptyValue", "empty", "{op: In, value: [\"\"]}", true},
      {"NotInMatch", "str", "{op: NotIn, value: [AMD]}", true},
      {"NotInNoMatch", "str", "{op: NotIn, value: [AMD, Intel]}", false},
      {"NotInMissingKeyIsFalse", "nope", "{op: NotIn, value: [AMD]}", false},
      {"InRegexpMatch", "str", "{op: InRegexp, value: [\"^Int\"]}", true},
      {"InRegexpIsUnanchored", "str", "{op: InRegexp, value: [nte]}", true},
      {"InRegexpSecondPattern", "str", "{op: InRegexp, value: [\"^AMD\", \"el$\"]}", true},
      {"InRegexpNoMatch", "str", "{op: InRegexp, value: [\"^AMD$\"]}", false},
      {"InRegexpMissingKey", "nope", "{op: InRegexp, value: [\".*\"]}", false},
      {"ExistsMatch", "str", "{op: Exists}", true},
      {"ExistsEmptyValue", "empty", "{op: Exists}", true},
      {"ExistsMissingKey", "nope", "{op: Exists}", false},
      {"DoesNotExistMatch", "nope", "{op: DoesNotExist}", true},
      {"DoesNotExistNoMatch", "str", "{op: DoesNotExist}", false},
      {"GtMatch", "num", "{op: Gt, value: [\"4\"]}", true},
      {"GtEqualIsFalse", "num", "{op: Gt, value: [\"5\"]}", false},
      {"GtNegative", "neg", "{op: Gt, value: [\"-4\"]}", true},
      {"GtMissingKey", "nope", "{op: Gt, value: [\"4\"]}", false},
      {"GtHostNotANumber", "word", "{op: Gt, value: [\"4\"]}", false},
      {"GeEqual", "num", "{op: Ge, value: [\"5\"]}", true},
      {"GeNoMatch", "num", "{op: Ge, value: [\"6\"]}", false},
      {"LtMatch", "num", "{op: Lt, value: [\"6\"]}", true},
      {"LtEqualIsFalse", "num", "{op: Lt, value: [\"5\"]}", false},
      {"LeEqual", "num", "{op: Le, value: [\"5\"]}", true},
      {"LeNoMatch", "num", "{op: Le, value: [\"4\"]}", false},
      {"GtLtInside", "num", "{op: GtLt, value: [\"4\", \"6\"]}", true},
      {"GtLtBoundIsOutside", "num", "{op: GtLt, value: [\"5\", \"6\"]}", false},
      {"GtLtMissingKey", "nope", "{op: GtLt, value: [\"4\", \"6\"]}", false},
      {"GeLeBoundIsInside", "num", "{op: GeLe, value: [\"5\", \"6\"]}", true},
      {"GeLeUpperBound", "num", "{op: GeLe, value: [\"1\", \"5\"]}", true},
      {"GeLeOutside", "num", "{op: GeLe, value: [\"6\", \"9\"]}", false},
      {"IsTrueMatch", "yes", "{op: IsTrue}", true},
      {"IsTrueOnFalse", "no", "{op: IsTrue}", false},
      {"IsTrueOnOtherText", "str", "{op: IsTrue}", false},
      {"IsTrueMissingKey", "nope", "{op: IsTrue}", false},
      {"IsFalseMatch", "no", "{op: IsFalse}", true},
      {"IsFalseOnTrue", "yes", "{op: IsFalse}", false},
      {"IsFalseMissingKey", "nope", "{op: IsFalse}", false},
      {"AnyAlways", "nope", "{op: Any}", true},
      // Versions: pre-release and flavour are ignored; 5.15 > 5.4 (not text order).
      {"VersionGe", "ver", "{op: Ge, value: [\"6.8\"], type: version}", true},
      {"VersionGeIgnoresFlavour", "ver", "{op: Ge, value: [\"6.8.0\"], type: version}", true},
      {"VersionGt", "ver", "{op: Gt, value: [\"6.8.0\"], type: version}", false},
      {"VersionLt", "ver", "{op: Lt, value: [\"6.10\"], type: version}", true},
      {"VersionLe", "ver", "{op: Le, value: [\"6.7.99\"], type: version}", false},
      {"VersionGtLt", "ver", "{op: GtLt, value: [\"5.15\", \"7\"], type: version}", true},
      {"VersionGeLe", "ver", "{op: GeLe, value: [\"6.8.0\", \"6.8.0\"], type: version}", true},
      {"VersionHostNotAVersion", "word", "{op: Ge, value: [\"1\"], type: version}", false},
      {"VersionMissingKey", "nope", "{op: Ge, value: [\"1\"], type: version}", false},
      // Without `type: version` a version is not an integer: no match.
      {"VersionWithoutType", "ver", "{op: Gt, value: [\"1\"]}", false},
  };
}

INSTANTIATE_TEST_SUITE_P(All, CompatOperators, ::testing::ValuesIn(OpCases()),
                         [](const auto& info) { return info.param.name; });

TEST(CompatFeatures, FlagsExistOrNotAndHaveNoValue) {
  HostProfile host = OperatorHost();
  EXPECT_TRUE(Matches(OneTermSpec("cpu.cpuid", "{AVX2: {op: Exists}}"), host));
  EXPECT_FALSE(Matches(OneTermSpec("cpu.cpuid", "{AVX512F: {op: Exists}}"), host));
  EXPECT_TRUE(Matches(OneTermSpec("cpu.cpuid", "{AVX512F: {op: DoesNotExist}}"), host));
  EXPECT_FALSE(Matches(OneTermSpec("cpu.cpuid", "{AVX2: {op: DoesNotExist}}"), host));
  // A flag element has no value: value operators never match it (NFD).
  EXPECT_FALSE(Matches(OneTermSpec("cpu.cpuid", "{AVX2: {op: In, value: [\"\"]}}"), host));
  EXPECT_FALSE(Matches(OneTermSpec("cpu.cpuid", "{AVX2: {op: NotIn, value: [x]}}"), host));
  EXPECT_FALSE(Matches(OneTermSpec("cpu.cpuid", "{AVX2: {op: IsTrue}}"), host));
  // Several expressions of one term: all must hold.
  EXPECT_TRUE(Matches(OneTermSpec("cpu.cpuid", "{AVX: {op: Exists}, AVX2: {op: Exists}}"), host));
  EXPECT_FALSE(Matches(OneTermSpec("cpu.cpuid", "{AVX: {op: Exists}, FMA3: {op: Exists}}"), host));
}

TEST(CompatFeatures, FeatureNamesAreCaseInsensitiveElementsAreNot) {
  HostProfile host = OperatorHost();
  EXPECT_TRUE(Matches(OneTermSpec("CPU.CPUID", "{AVX2: {op: Exists}}"), host));
  EXPECT_FALSE(Matches(OneTermSpec("cpu.cpuid", "{avx2: {op: Exists}}"), host));
}

TEST(CompatFeatures, MissingFeatureFailsTheTermEvenForDoesNotExist) {
  HostProfile host = OperatorHost();
  EXPECT_FALSE(Matches(OneTermSpec("kernel.loadedmodule", "{nouveau: {op: DoesNotExist}}"), host));
  EXPECT_FALSE(Matches(OneTermSpec("kernel.loadedmodule", "{}"), host));
  EXPECT_TRUE(Matches(OneTermSpec("cpu.cpuid", "{}"), host));  // present, nothing asked
}

TEST(CompatFeatures, FlagsAndAttributesOfOneFeatureAreAUnion) {
  HostProfile host;
  host.nfd.flags["cpu.cpuid"] = {"AVX2"};
  host.nfd.attributes["cpu.cpuid"] = {{"AVXVNNIINT8", "1"}};
  EXPECT_TRUE(Matches(
      OneTermSpec("cpu.cpuid", "{AVX2: {op: Exists}, AVXVNNIINT8: {op: Gt, value: [\"0\"]}}"),
      host));
  // DoesNotExist must hold in both.
  EXPECT_FALSE(Matches(OneTermSpec("cpu.cpuid", "{AVXVNNIINT8: {op: DoesNotExist}}"), host));
  EXPECT_FALSE(Matches(OneTermSpec("cpu.cpuid", "{AVX2: {op: DoesNotExist}}"), host));
  EXPECT_TRUE(Matches(OneTermSpec("cpu.cpuid", "{AMX: {op: DoesNotExist}}"), host));
}

TEST(CompatFeatures, InstancesNeedOneInstanceMatchingAllExpressions) {
  HostProfile host = OperatorHost();
  EXPECT_TRUE(Matches(
      OneTermSpec("pci.device",
                  "{vendor: {op: In, value: [\"10de\"]}, class: {op: InRegexp, value: [\"^03\"]}}"),
      host));
  // vendor 10de exists and class 0200 exists, but on different instances.
  std::string split = OneTermSpec(
      "pci.device", "{vendor: {op: In, value: [\"10de\"]}, class: {op: In, value: [\"0200\"]}}");
  EXPECT_FALSE(Matches(split, host));
  auto spec = ParseCompatSpec(split, SpecFormat::kNfd, "t");
  ASSERT_TRUE(spec.ok());
  SpecResult result = EvaluateCompatSpec(*spec, host);
  const auto& rows = result.sets[0].rules[0].match_features;
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_NE(rows[0].detail.find("no single instance"), std::string::npos) << rows[0].detail;
  // No instance at all.
  HostProfile none;
  none.nfd.instances["pci.device"] = {};
  EXPECT_FALSE(Matches(OneTermSpec("pci.device", "{vendor: {op: Exists}}"), none));
}

TEST(CompatFeatures, MatchNameOnElementNames) {
  HostProfile host = OperatorHost();
  auto spec_with = [](const std::string& feature, const std::string& match_name) {
    return absl::StrCat(
        "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n    matchFeatures:\n"
        "    - feature: ",
        feature, "\n      matchName: ", match_name, "\n");
  };
  EXPECT_TRUE(Matches(spec_with("cpu.cpuid", "{op: InRegexp, value: [\"^AVX\"]}"), host));
  EXPECT_FALSE(Matches(spec_with("cpu.cpuid", "{op: InRegexp, value: [\"^AVX512\"]}"), host));
  EXPECT_TRUE(Matches(spec_with("cpu.cpuid", "{op: In, value: [SSE4.2]}"), host));
  EXPECT_TRUE(Matches(spec_with("f", "{op: In, value: [num]}"), host));  // attribute names
  EXPECT_TRUE(
      Matches(spec_with("pci.device", "{op: In, value: [class]}"), host));  // instance attrs
  EXPECT_FALSE(Matches(spec_with("nope", "{op: Exists}"), host));
}

std::string TwoRuleSpec(const std::string& any_a, const std::string& any_b) {
  return absl::StrCat(
      "version: v1alpha1\ncompatibilities:\n- rules:\n"
      "  - name: base\n    matchFeatures:\n    - feature: cpu.cpuid\n"
      "      matchExpressions: {AVX: {op: Exists}}\n"
      "  - name: either\n    matchAny:\n"
      "    - matchFeatures: [{feature: cpu.cpuid, matchExpressions: {",
      any_a,
      ": {op: Exists}}}]\n"
      "    - matchFeatures: [{feature: cpu.cpuid, matchExpressions: {",
      any_b, ": {op: Exists}}}]\n");
}

TEST(CompatRules, MatchAnyNeedsOneAndRulesAllMatch) {
  HostProfile host = OperatorHost();
  EXPECT_TRUE(Matches(TwoRuleSpec("AVX512F", "AVX2"), host));
  EXPECT_TRUE(Matches(TwoRuleSpec("AVX2", "AVX512F"), host));
  EXPECT_FALSE(Matches(TwoRuleSpec("AVX512F", "AMX"), host));
  host.nfd.flags["cpu.cpuid"].erase("AVX");  // the first rule now fails
  EXPECT_FALSE(Matches(TwoRuleSpec("AVX512F", "AVX2"), host));
}

TEST(CompatRules, MatchFeaturesAndMatchAnyInOneRuleAreBothRequired) {
  HostProfile host = OperatorHost();
  std::string spec =
      "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n"
      "    matchFeatures: [{feature: f, matchExpressions: {str: {op: In, value: [Intel]}}}]\n"
      "    matchAny:\n    - matchFeatures: [{feature: cpu.cpuid, matchExpressions: {AMX: {op: "
      "Exists}}}]\n";
  EXPECT_FALSE(Matches(spec, host));
  host.nfd.flags["cpu.cpuid"].insert("AMX");
  EXPECT_TRUE(Matches(spec, host));
}

TEST(CompatRealistic, HostsGetTheirBestSet) {
  auto spec = ParseCompatSpec(ReadTestData("compat/realistic.yaml"), SpecFormat::kAuto, "r");
  ASSERT_TRUE(spec.ok()) << spec.status();

  SpecResult gpu = EvaluateCompatSpec(*spec, LoadHost("compat/host_gpu.json"));
  ASSERT_EQ(gpu.sets.size(), 3u);
  EXPECT_TRUE(gpu.sets[0].matched);
  EXPECT_EQ(gpu.best_weight(), 30);

  SpecResult avx2 = EvaluateCompatSpec(*spec, LoadHost("compat/host_avx2.json"));
  EXPECT_FALSE(avx2.sets[0].matched);
  EXPECT_TRUE(avx2.sets[1].matched);
  EXPECT_TRUE(avx2.sets[2].matched);
  EXPECT_EQ(avx2.best_weight(), 20);  // the max among matching sets, not the sum

  HostProfile bare;
  SpecResult none = EvaluateCompatSpec(*spec, bare);
  EXPECT_FALSE(none.matched());
  EXPECT_EQ(none.best_weight(), std::nullopt);
}

TEST(CompatRender, TextLooksLikeValidateNode) {
  auto spec = ParseCompatSpec(ReadTestData("compat/realistic.yaml"), SpecFormat::kAuto, "r");
  ASSERT_TRUE(spec.ok());
  std::string text =
      RenderCompatResultText(EvaluateCompatSpec(*spec, LoadHost("compat/host_avx2.json")));
  EXPECT_NE(text.find("COMPATIBILITY SET #1 Weight: 30; Tag: avx512-cuda - FAIL"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("COMPATIBILITY SET #2 Weight: 20; Tag: avx2 - OK"), std::string::npos);
  EXPECT_NE(text.find("RULE: CPU AVX-512 - FAIL"), std::string::npos);
  // An expression line: feature.element, expression, matcher type, status, why.
  EXPECT_NE(text.find("cpu.cpuid.AVX512F"), std::string::npos);
  EXPECT_NE(text.find("{op: Exists}"), std::string::npos);
  EXPECT_NE(text.find("FAIL (not on host)"), std::string::npos);
  EXPECT_NE(text.find("kernel.loadedmodule.nouveau"), std::string::npos);
  EXPECT_NE(text.find("matchAny #1 - OK"), std::string::npos);
  EXPECT_NE(text.find("matchName"), std::string::npos);
}

TEST(CompatRender, JsonUsesValidateNodeFieldNames) {
  std::string spec_text = OneTermSpec("f", "{num: {op: Gt, value: [\"9\"]}}");
  auto spec = ParseCompatSpec(spec_text, SpecFormat::kNfd, "t");
  ASSERT_TRUE(spec.ok());
  JsonWriter out;
  WriteCompatResultJson(EvaluateCompatSpec(*spec, OperatorHost()), out);
  EXPECT_EQ(out.str(),
            R"([{"rules":[{"name":"r","isMatch":false,"matchedExpressions":[{"feature":"f",)"
            R"("name":"num","expression":{"op":"Gt","value":["9"]},"matcherType":)"
            R"("matchExpression","isMatch":false,"detail":"host: 5"}]}],"description":"",)"
            R"("weight":0,"tag":"","isMatch":false}])");
}

// ---- Proposal F ----

TEST(CompatGroups, LookupOrderAndEquality) {
  HostProfile host;
  host.nfd.attributes["local.feature"] = {{"org.supercontainers.mpi.implementation", "openmpi"},
                                          {"org.supercontainers.mpi.version", "4.1.6"}};
  host.nfd.attributes["kernel.version"] = {{"major", "6"}};
  host.nfd.flags["cpu.cpuid"] = {"AVX2"};
  SpecCheck check = CheckCompatSpec(ReadTestData("compat/groups.json"));
  ASSERT_TRUE(check.ok());
  SpecResult r = EvaluateCompatSpec(*check.spec, host);
  EXPECT_TRUE(r.sets[0].matched) << RenderCompatResultText(r);
  EXPECT_EQ(r.best_weight(), 5);

  // A different value fails the set; the looser set still matches.
  host.nfd.attributes["local.feature"]["org.supercontainers.mpi.version"] = "5.0.0";
  r = EvaluateCompatSpec(*check.spec, host);
  EXPECT_FALSE(r.sets[0].matched);
  EXPECT_TRUE(r.sets[1].matched);
  EXPECT_EQ(r.best_weight(), 0);
  EXPECT_NE(RenderCompatResultText(r).find("host: 5.0.0"), std::string::npos);
}

TEST(CompatGroups, LocalFeatureWinsAndFlagsReadTrueOrFalse) {
  auto spec = ParseCompatSpec(
      R"({"compatibilities": {"kernel": {"version.major": 6}, "cpu.cpuid": {"AVX2": true, "AMX": false}}})",
      SpecFormat::kKeyValueGroups, "f.json");
  ASSERT_TRUE(spec.ok()) << spec.status();
  HostProfile host;
  host.nfd.attributes["kernel.version"] = {{"major", "5"}};
  host.nfd.attributes["local.feature"] = {{"kernel.version.major", "6"}};  // operator override
  host.nfd.flags["cpu.cpuid"] = {"AVX2"};
  EXPECT_TRUE(EvaluateCompatSpec(*spec, host).matched());
  host.nfd.flags["cpu.cpuid"].insert("AMX");
  EXPECT_FALSE(EvaluateCompatSpec(*spec, host).matched());
  host.nfd.flags.clear();  // a feature the host does not know fails
  EXPECT_FALSE(EvaluateCompatSpec(*spec, host).matched());
}

// Proposal F's NFD group: keys are NFD label names, read from the labels NFD
// would publish for the host; an absent flag label reads false, as on a
// labelled node.
TEST(CompatGroups, NfdGroupKeysAreLabelNames) {
  HostProfile host;
  host.nfd.flags["cpu.cpuid"] = {"AVX512F", "AVX2"};
  host.nfd.attributes["cpu.topology"] = {{"hardware_multithreading", "true"}};
  host.nfd.attributes["cpu.pstate"] = {{"status", "passive"}, {"turbo", "false"}};
  host.nfd.attributes["kernel.version"] = {{"major", "6"}, {"full", "6.1.0"}};
  host.nfd.attributes["memory.numa"] = {{"is_numa", "false"}};
  struct Case {
    std::string groups;  // the "compatibilities" object
    GroupPolicy policy;
    bool matched;
    std::string detail;  // in the rendered result, when not empty
  };
  GroupPolicy ignore_unknown;
  ignore_unknown.ignore_unknown_keys = true;
  const std::vector<Case> cases = {
      {R"({"nfd": {"cpu-cpuid.AVX512F": true}})", {}, true, ""},
      {R"({"nfd": {"cpu-cpuid.AMXBF16": false}})", {}, true, ""},
      {R"({"nfd": {"cpu-cpuid.AMXBF16": true}})", {}, false, "host: false"},
      {R"({"nfd": {"cpu-hardware_multithreading": true}})", {}, true, ""},
      {R"({"nfd": {"cpu-pstate.status": "passive", "cpu-pstate.turbo": false}})", {}, true, ""},
      {R"({"nfd": {"kernel-version.major": 4}})", {}, false, "host: 6"},
      {R"({"io.kubernetes.nfd": {"kernel-version.major": 6}})", {}, true, ""},
      {R"({"nfd": {"feature.node.kubernetes.io/cpu-cpuid.AVX2": true}})", {}, true, ""},
      {R"({"nfd": {"memory-numa": false}})", {}, true, ""},
      // Feature element names are not label names: nothing of that name.
      {R"({"nfd": {"cpu.cpuid.AVX2": true}})", {}, false, "no NFD label of that name"},
      {R"({"nfd": {"cpu.cpuid.AVX2": true}})", ignore_unknown, true, "ignored (unknown key)"},
  };
  for (const Case& c : cases) {
    auto spec = ParseCompatSpec(absl::StrCat(R"({"compatibilities": )", c.groups, "}"),
                                SpecFormat::kKeyValueGroups, "f.json", /*strict_json=*/true);
    ASSERT_TRUE(spec.ok()) << spec.status();
    SpecResult r = EvaluateCompatSpec(*spec, host, c.policy);
    EXPECT_EQ(r.matched(), c.matched) << c.groups << "\n" << RenderCompatResultText(r);
    if (!c.detail.empty()) {
      EXPECT_NE(RenderCompatResultText(r).find(c.detail), std::string::npos)
          << c.groups << "\n"
          << RenderCompatResultText(r);
    }
  }
}

TEST(NfdLabels, NamedAsNfdPublishesThem) {
  NfdFeatures nfd;
  nfd.flags["cpu.cpuid"] = {"AVX2"};
  nfd.flags["kernel.loadedmodule"] = {"nvidia"};
  nfd.attributes["cpu.topology"] = {{"hardware_multithreading", "false"}};
  nfd.attributes["kernel.config"] = {{"NO_HZ", "y"}, {"PREEMPT", "n"}, {"KVM", "m"}};
  nfd.attributes["system.osrelease"] = {
      {"ID", "ubuntu"}, {"VERSION_ID", "22.04"}, {"VERSION_ID.major", "22"}, {"NAME", "Ubuntu"}};
  nfd.attributes["cpu.sst"] = {{"bf.enabled", "true"}};
  nfd.instances["pci.device"] = {{{"class", "0300"}, {"vendor", "10de"}, {"device", "2204"}}};
  nfd.attributes["local.feature"] = {{"vendor.example/fpga", "true"}};
  const std::map<std::string, std::string> want = {
      {"cpu-cpuid.AVX2", "true"},
      {"cpu-hardware_multithreading", "false"},
      {"cpu-power.sst_bf.enabled", "true"},
      {"kernel-config.KVM", "true"},
      {"kernel-config.NO_HZ", "true"},
      {"pci-0300_10de.present", "true"},
      {"system-os_release.ID", "ubuntu"},
      {"system-os_release.VERSION_ID", "22.04"},
      {"system-os_release.VERSION_ID.major", "22"},
      {"vendor.example/fpga", "true"},
  };
  EXPECT_EQ(NfdLabels(nfd), want);
  struct Lookup {
    std::string label;
    std::optional<std::string> value;
  };
  for (const Lookup& l : std::vector<Lookup>{
           {"cpu-cpuid.AVX2", "true"},
           {"feature.node.kubernetes.io/cpu-cpuid.AVX2", "true"},
           {"cpu-cpuid.AVX512F", "false"},  // absent flag label: false
           {"kernel-config.PREEMPT", "false"},
           {"pci-0302_10de.present", "false"},
           {"kernel-loadedmodule.nvidia", std::nullopt},  // NFD labels no modules
           {"cpu-cpuid", std::nullopt},
           {"made-up", std::nullopt},
       }) {
    EXPECT_EQ(NfdLabelValue(want, l.label), l.value) << l.label;
  }
}

// Which groups are requirements, what a matching optional key weighs and
// what a key found nowhere does are the operator's, and every explanation
// says which.
TEST(CompatGroups, TheOperatorDrawsTheLineBetweenRequiredAndOptional) {
  HostProfile host;
  host.nfd.attributes["kernel.version"] = {{"major", "6"}};
  host.nfd.attributes["local.feature"] = {{"mpi.implementation", "openmpi"},
                                          {"mpi.version", "5.0.0"}};
  const std::string spec_text = R"({"compatibilities": [{"weight": 3, "groups": {
      "gpu": {"vendor": "nvidia"},
      "nfd": {"kernel-version.major": 6},
      "mpi": {"implementation": "openmpi", "version": "4.1.6"}}}]})";
  auto spec = ParseCompatSpec(spec_text, SpecFormat::kKeyValueGroups, "f.json", true);
  ASSERT_TRUE(spec.ok()) << spec.status();
  struct Case {
    std::string name;
    GroupPolicy policy;
    std::optional<int64_t> weight;  // nullopt: the set fails
    std::string explained;
    std::string failure = "";  // the failure the reason names, if given
  };
  GroupPolicy nfd_required;
  nfd_required.required = {"nfd"};
  nfd_required.optional_key_weight = 10;
  GroupPolicy mpi_required = nfd_required;
  mpi_required.required = {"nfd", "mpi"};
  GroupPolicy gpu_required_unknown_ignored = nfd_required;
  gpu_required_unknown_ignored.required = {"nfd", "gpu"};
  gpu_required_unknown_ignored.ignore_unknown_keys = true;
  const std::vector<Case> cases = {
      {"default: every key required, the unknown gpu.vendor fails",
       {},
       std::nullopt,
       "required: *; optional key weight 1; unknown key: fails",
       "gpu.vendor == nvidia failed (not on host)"},
      {"only nfd required: one optional key matches, +10", nfd_required, 13,
       "required: nfd; optional key weight 10; unknown key: fails"},
      {"mpi required too: its version fails the set", mpi_required, std::nullopt,
       "required: nfd,mpi", "mpi.version == 4.1.6 failed (host: 5.0.0)"},
      {"gpu required, unknown keys ignored: gpu.vendor is passed over",
       gpu_required_unknown_ignored, 13, "unknown key: ignored"},
  };
  for (const Case& c : cases) {
    SpecResult r = EvaluateCompatSpec(*spec, host, c.policy);
    EXPECT_EQ(r.best_weight(), c.weight) << c.name << "\n" << RenderCompatResultText(r);
    // The rule line (upper case, as validate-node prints rule names) and
    // the one-line reason of an artifact both state the policy.
    EXPECT_NE(RenderCompatResultText(r).find(absl::AsciiStrToUpper(c.explained)), std::string::npos)
        << c.name << "\n"
        << RenderCompatResultText(r);
    CompatArtifact a;
    a.id = "sha256:f";
    a.kind = "groups";
    a.specs = {*spec};
    const ArtifactResult result = EvaluateArtifact(a, false, host, c.policy);
    const CompatVerdict verdict = CombineArtifactResults({&result});
    ASSERT_EQ(verdict.reasons.size(), 1u);
    EXPECT_NE(verdict.reasons[0].find(c.explained), std::string::npos) << c.name << "\n"
                                                                       << verdict.reasons[0];
    if (!c.failure.empty()) {
      // The failure named is the key that decided, not an optional one.
      EXPECT_NE(verdict.reasons[0].find(c.failure), std::string::npos) << c.name << "\n"
                                                                       << verdict.reasons[0];
    }
  }
}

// NFD's back-references, as validate-node runs them: a rule that matches
// adds its labels and vars to the attribute feature rule.matched, which the
// rules after it read - in its set and in the sets after it.
TEST(CompatRules, VarsAndLabelsOfMatchedRulesAreBackReferences) {
  const std::string spec_text = R"(version: v1alpha1
compatibilities:
- tag: first
  rules:
  - name: kernel
    vars: {kernel.ok: "true"}
    labels: {my-kernel: "6"}
    matchFeatures:
    - feature: kernel.version
      matchExpressions: {major: {op: Ge, value: ["6"]}}
  - name: uses the var
    matchFeatures:
    - feature: rule.matched
      matchExpressions: {kernel.ok: {op: IsTrue}}
- tag: second
  rules:
  - name: uses the label of the first set
    matchFeatures:
    - feature: rule.matched
      matchExpressions: {my-kernel: {op: In, value: ["6"]}}
)";
  SpecCheck check = CheckCompatSpec(spec_text);
  ASSERT_TRUE(check.ok());
  for (const SpecProblem& p : check.problems) ADD_FAILURE() << p.message;  // no warning
  struct Case {
    std::string kernel_major;
    bool first, second;
  };
  for (const Case& c : std::vector<Case>{{"6", true, true}, {"5", false, false}}) {
    HostProfile host;
    host.nfd.attributes["kernel.version"] = {{"major", c.kernel_major}};
    SpecResult r = EvaluateCompatSpec(*check.spec, host);
    EXPECT_EQ(r.sets[0].matched, c.first) << c.kernel_major << "\n" << RenderCompatResultText(r);
    EXPECT_EQ(r.sets[1].matched, c.second) << c.kernel_major << "\n" << RenderCompatResultText(r);
    EXPECT_TRUE(host.nfd.attributes.count("rule.matched") == 0) << "the host is not changed";
  }
}

TEST(CompatRules, TemplatesAreNotReadAndSayWhat) {
  SpecCheck check = CheckCompatSpec(R"(version: v1alpha1
compatibilities:
- rules:
  - name: r
    varsTemplate: "{{ range .cpu.cpuid }}{{ .Name }}=true{{ end }}"
    matchFeatures: [{feature: cpu.cpuid, matchExpressions: {AVX2: {op: Exists}}}]
)");
  ASSERT_TRUE(check.ok());
  ASSERT_EQ(check.problems.size(), 1u);
  EXPECT_NE(check.problems[0].message.find("\"varsTemplate\" (a Go template) is not read"),
            std::string::npos)
      << check.problems[0].message;
  EXPECT_EQ(check.problems[0].pos.line, 5);
}

// Base images: a base's artifacts are requirements of the entry too, and
// each base adds its own best weight to the best of the image's own.
TEST(CompatArtifacts, BasesAddTheirRequirementsAndTheirWeights) {
  auto result = [](std::string from_base, bool on_index, std::optional<int64_t> weight) {
    ArtifactResult r;
    r.id = "sha256:a";
    r.kind = "k";
    r.on_index = on_index;
    r.from_base = std::move(from_base);
    r.matched = weight.has_value();
    r.weight = weight;
    return r;
  };
  struct Case {
    const char* name;
    std::vector<ArtifactResult> results;
    bool passed;
    int64_t weight;
  };
  const std::vector<Case> cases = {
      {"index 3 and entry 7: the best of the image's own",
       {result("", true, 3), result("", false, 7)},
       true,
       7},
      {"and a base's 20 adds",
       {result("", true, 3), result("", false, 7), result("b@1", false, 20)},
       true,
       27},
      {"two artifacts of one base: its best",
       {result("b@1", true, 5), result("b@1", false, 2)},
       true,
       5},
      {"two bases add", {result("b@1", false, 5), result("c@2", false, -2)}, true, 3},
      {"a base that does not match rules the entry out",
       {result("", false, 7), result("b@1", false, std::nullopt)},
       false,
       0},
  };
  for (const Case& c : cases) {
    std::vector<const ArtifactResult*> raw;
    for (const ArtifactResult& r : c.results) raw.push_back(&r);
    const CompatVerdict v = CombineArtifactResults(raw);
    EXPECT_EQ(v.passed, c.passed) << c.name;
    EXPECT_EQ(v.weight, c.weight) << c.name;
    for (size_t i = 0; i < c.results.size(); ++i) {
      if (c.results[i].from_base.empty()) continue;
      EXPECT_NE(v.reasons[i].find("from base " + c.results[i].from_base), std::string::npos)
          << c.name << ": " << v.reasons[i];
    }
  }
}

}  // namespace
}  // namespace imgsel
