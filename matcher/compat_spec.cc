#include "matcher/compat_spec.h"

#include <charconv>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "matcher/features.h"
#include "matcher/json_cursor.h"
#include "matcher/policy.h"
#include "matcher/suggest.h"
#include "matcher/yaml_tree.h"
#include "oci/utf8.h"
#include "re2/re2.h"

namespace imgsel {
namespace {

struct OpInfo {
  absl::string_view name;
  MatchOp op;
  int min_values;
  int max_values;  // -1: unbounded
  bool numeric;
};

// NFD's operator table: name and the number of values each takes.
constexpr OpInfo kOps[] = {
    {"In", MatchOp::kIn, 1, -1, false},
    {"NotIn", MatchOp::kNotIn, 1, -1, false},
    {"InRegexp", MatchOp::kInRegexp, 1, -1, false},
    {"Exists", MatchOp::kExists, 0, 0, false},
    {"DoesNotExist", MatchOp::kDoesNotExist, 0, 0, false},
    {"Gt", MatchOp::kGt, 1, 1, true},
    {"Ge", MatchOp::kGe, 1, 1, true},
    {"Lt", MatchOp::kLt, 1, 1, true},
    {"Le", MatchOp::kLe, 1, 1, true},
    {"GtLt", MatchOp::kGtLt, 2, 2, true},
    {"GeLe", MatchOp::kGeLe, 2, 2, true},
    {"IsTrue", MatchOp::kIsTrue, 0, 0, false},
    {"IsFalse", MatchOp::kIsFalse, 0, 0, false},
    {"Any", MatchOp::kAny, 0, 0, false},
};

const OpInfo* FindOp(absl::string_view name) {
  for (const OpInfo& info : kOps) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

const OpInfo& InfoFor(MatchOp op) {
  for (const OpInfo& info : kOps) {
    if (info.op == op) return info;
  }
  return kOps[0];
}

SourcePos PosOf(const YamlNode& node) { return {node.pos().line, node.pos().column}; }

// The features NFD's sources publish (nfd export features), imgsel's
// local.feature (operator attributes and hooks) and NFD's rule.matched
// back-references: every feature name a term can find on a host.
constexpr absl::string_view kNfdFeatureNames[] = {
    "cpu.coprocessor",     "cpu.cpuid",        "cpu.cstate",
    "cpu.model",           "cpu.pstate",       "cpu.rdt",
    "cpu.security",        "cpu.sgx",          "cpu.sst",
    "cpu.topology",        "kernel.config",    "kernel.enabledmodule",
    "kernel.loadedmodule", "kernel.selinux",   "kernel.version",
    "local.feature",       "local.label",      "memory.hugepages",
    "memory.numa",         "memory.nv",        "memory.swap",
    "network.device",      "network.virtual",  "pci.device",
    "rule.matched",        "storage.block",    "system.dmiid",
    "system.name",         "system.osrelease", "usb.device",
};

// Attribute features whose elements NFD's sources fix (the others, such as
// system.osrelease or kernel.config, hold whatever the host has).
struct FixedElements {
  absl::string_view feature;
  std::initializer_list<absl::string_view> elements;
};
const FixedElements kFixedElements[] = {
    {"kernel.version", {"full", "major", "minor", "revision"}},
    {"kernel.selinux", {"enabled"}},
    {"cpu.model", {"vendor_id", "family", "id", "hypervisor"}},
    {"cpu.topology", {"hardware_multithreading", "socket_count"}},
    {"memory.numa", {"is_numa", "node_count"}},
};

// Reached a bound: the rest of the document is not examined.
struct StopReading {};

// Walks the YAML tree along the schema, collecting every problem.
class SpecReader {
 public:
  std::vector<SpecProblem> problems;

  void Error(SourcePos pos, std::string message) {
    problems.push_back({SpecProblem::Severity::kError, pos, std::move(message)});
  }
  void Warn(SourcePos pos, std::string message) {
    problems.push_back({SpecProblem::Severity::kWarning, pos, std::move(message)});
  }
  bool HasError() const {
    for (const SpecProblem& p : problems) {
      if (p.severity == SpecProblem::Severity::kError) return true;
    }
    return false;
  }

  void ReadTop(const YamlNode& root, SpecFormat format, CompatSpec& spec) {
    if (!root.IsMap()) {
      Error(PosOf(root), "expected a mapping with \"compatibilities\" at the top level");
      return;
    }
    if (format == SpecFormat::kAuto) format = DetectFormat(root);
    spec.format = format;
    bool saw_compat = false;
    for (const YamlNode::Pair it : root.pairs()) {
      std::string key = KeyText(it.first);
      const YamlNode value = it.second;
      if (key == "version") {
        if (!ReadScalar(value, "version", spec.version)) continue;
        if (format == SpecFormat::kNfd && spec.version != "v1alpha1") {
          Error(PosOf(value), absl::StrCat("unsupported version \"", spec.version,
                                           "\" (this reader knows v1alpha1)"));
        }
      } else if (key == "compatibilities") {
        saw_compat = true;
        if (format == SpecFormat::kNfd) {
          ReadNfdSets(value, spec);
        } else {
          ReadGroupSets(value, spec);
        }
      } else {
        Warn(PosOf(it.first), absl::StrCat("unknown key \"", key, "\" ignored"));
      }
    }
    if (format == SpecFormat::kNfd && spec.version.empty()) {
      Error(PosOf(root), "missing \"version\" (expected v1alpha1)");
    }
    if (!saw_compat) Error(PosOf(root), "missing \"compatibilities\"");
  }

 private:
  // Where the reader is, for messages about limits.
  struct Where {
    size_t set = 0;  // 1-based, as validate-node numbers sets; 0: not in a set
    std::string rule;
    std::string feature;
    std::string key;  // element name, "matchName", or a group's "<group>.<key>"
  };
  Where where_;
  size_t expressions_ = 0;
  size_t regexps_ = 0;
  int64_t regexp_program_size_ = 0;

  // " (in set #2, rule \"cpu\", cpu.cpuid AVX512F)", or "" outside any set.
  std::string Place() const {
    std::vector<std::string> parts;
    if (where_.set > 0) parts.push_back(absl::StrCat("set #", where_.set));
    if (!where_.rule.empty()) parts.push_back(absl::StrCat("rule \"", where_.rule, "\""));
    if (!where_.feature.empty()) {
      parts.push_back(absl::StrCat(where_.feature, where_.key.empty() ? "" : " ", where_.key));
    } else if (!where_.key.empty()) {
      parts.push_back(where_.key);
    }
    if (parts.empty()) return "";
    return absl::StrCat(" (in ", absl::StrJoin(parts, ", "), ")");
  }

  // A limit of the budget is passed: the rest of the document is not read.
  [[noreturn]] void OverBudget(SourcePos pos, absl::string_view what) {
    Error(pos, absl::StrCat(what, Place(), "; the rest is not read"));
    throw StopReading{};
  }

  static std::string KeyText(const YamlNode& key) {
    return key.IsScalar() ? key.Scalar() : std::string();
  }

  static SpecFormat DetectFormat(const YamlNode& root) {
    if (root.Find("version")) return SpecFormat::kNfd;
    std::optional<YamlNode> compat = root.Find("compatibilities");
    if (compat && compat->IsMap()) return SpecFormat::kKeyValueGroups;
    if (compat && compat->IsSequence()) {
      for (const YamlNode set : compat->items()) {
        if (set.IsMap() && set.Find("groups")) return SpecFormat::kKeyValueGroups;
      }
    }
    return SpecFormat::kNfd;
  }

  void CountExpression(SourcePos pos) {
    if (++expressions_ > kMaxCompatExpressions) {
      OverBudget(pos, absl::StrCat("more than ", kMaxCompatExpressions,
                                   " expressions, the limit of one spec"));
    }
  }

  bool ReadScalar(const YamlNode& node, absl::string_view what, std::string& out) {
    if (!node.IsScalar()) {
      Error(PosOf(node), absl::StrCat("\"", what, "\" must be a string"));
      return false;
    }
    out = node.Scalar();
    return true;
  }

  // A set's weight: an integer of at most kMaxPreferenceWeight either way,
  // so that no sum of weights can overflow a score.
  void ReadWeight(const YamlNode& node, int64_t& out) {
    std::optional<int64_t> v;
    if (node.IsScalar()) v = ParseSpecInt(node.Scalar());
    if (!v) {
      Error(PosOf(node), "\"weight\" must be an integer");
      return;
    }
    if (*v < -kMaxPreferenceWeight || *v > kMaxPreferenceWeight) {
      Error(PosOf(node),
            absl::StrCat("\"weight\" ", *v, " is out of range (", -kMaxPreferenceWeight, "..",
                         kMaxPreferenceWeight, ")", Place()));
      return;
    }
    out = *v;
  }

  // Reads each element of `list` with `read`; past `limit` elements the
  // spec stops being read (with an error saying so).
  template <typename T, typename Read>
  void ReadAtMost(const YamlNode& list, std::vector<T>& out, size_t limit, absl::string_view what,
                  Read read) {
    for (const YamlNode item : list.items()) {
      if (out.size() == limit) {
        OverBudget(PosOf(item), absl::StrCat("more than ", limit, " ", what));
      }
      out.push_back(read(item));
    }
  }

  // ---- NFD ----

  void ReadNfdSets(const YamlNode& node, CompatSpec& spec) {
    if (!node.IsSequence()) {
      Error(PosOf(node), "\"compatibilities\" must be a list of compatibility sets");
      return;
    }
    if (node.size() == 0) Error(PosOf(node), "\"compatibilities\" is empty");
    ReadAtMost(node, spec.sets, kMaxCompatSets, "compatibility sets, the limit of one spec",
               [&](const YamlNode& item) {
                 where_ = {spec.sets.size() + 1, {}, {}, {}};
                 return ReadNfdSet(item);
               });
  }

  CompatSet ReadNfdSet(const YamlNode& node) {
    CompatSet set;
    set.pos = PosOf(node);
    if (!node.IsMap()) {
      Error(set.pos, "a compatibility set must be a mapping with \"rules\"");
      return set;
    }
    bool saw_rules = false;
    for (const YamlNode::Pair it : node.pairs()) {
      std::string key = KeyText(it.first);
      const YamlNode value = it.second;
      if (key == "rules") {
        saw_rules = true;
        if (!value.IsSequence()) {
          Error(PosOf(value), "\"rules\" must be a list");
          continue;
        }
        if (value.size() == 0) Error(PosOf(value), "\"rules\" is empty");
        ReadAtMost(value, set.rules, kMaxCompatRulesPerSet, "rules in one set, the limit",
                   [&](const YamlNode& rule) { return ReadRule(rule); });
      } else if (key == "weight") {
        ReadWeight(value, set.weight);
      } else if (key == "tag") {
        ReadScalar(value, "tag", set.tag);
      } else if (key == "description") {
        ReadScalar(value, "description", set.description);
      } else {
        Warn(PosOf(it.first), absl::StrCat("unknown key \"", key, "\" in a compatibility set"));
      }
    }
    if (!saw_rules) Error(set.pos, "compatibility set without \"rules\"");
    return set;
  }

  CompatRule ReadRule(const YamlNode& node) {
    CompatRule rule;
    rule.pos = PosOf(node);
    if (!node.IsMap()) {
      Error(rule.pos, "a rule must be a mapping with \"name\" and \"matchFeatures\"/\"matchAny\"");
      return rule;
    }
    bool saw_name = false;
    bool saw_match = false;
    // The name may come after the terms it names.
    std::optional<YamlNode> name = node.Find("name");
    where_.rule = name && name->IsScalar() ? name->Scalar() : std::string();
    where_.feature.clear();
    where_.key.clear();
    for (const YamlNode::Pair it : node.pairs()) {
      std::string key = KeyText(it.first);
      const YamlNode value = it.second;
      if (key == "name") {
        saw_name = ReadScalar(value, "name", rule.name);
      } else if (key == "matchFeatures") {
        saw_match = true;
        rule.match_features = ReadTerms(value, "matchFeatures");
      } else if (key == "matchAny") {
        saw_match = true;
        if (!value.IsSequence()) {
          Error(PosOf(value), "\"matchAny\" must be a list of {matchFeatures: [...]}");
          continue;
        }
        for (const YamlNode elem : value.items()) rule.match_any.push_back(ReadMatchAnyElem(elem));
      } else if (key == "labels" || key == "vars") {
        ReadBackrefs(value, key, key == "labels" ? rule.labels : rule.vars);
      } else if (key == "varsTemplate" || key == "labelsTemplate") {
        Warn(PosOf(it.first), absl::StrCat("\"", key,
                                           "\" (a Go template) is not read by imgsel; ignored, so "
                                           "rule.matched will not hold what it makes"));
      } else if (key == "annotations" || key == "taints" || key == "extendedResources") {
        Warn(PosOf(it.first),
             absl::StrCat("\"", key, "\" has no effect on image compatibility; ignored"));
      } else {
        Warn(PosOf(it.first), absl::StrCat("unknown key \"", key, "\" in a rule"));
      }
    }
    if (!saw_name) Error(rule.pos, "rule without \"name\"");
    if (!saw_match)
      Warn(rule.pos, "rule has neither \"matchFeatures\" nor \"matchAny\": it always matches");
    return rule;
  }

  // `labels:` / `vars:` of a rule: names to values (strings, numbers or
  // booleans, as text), each counted as an expression of the budget.
  void ReadBackrefs(const YamlNode& node, absl::string_view what,
                    std::vector<std::pair<std::string, std::string>>& out) {
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      Error(PosOf(node), absl::StrCat("\"", what, "\" must map names to values"));
      return;
    }
    for (const YamlNode::Pair kv : node.pairs()) {
      std::string name = KeyText(kv.first);
      where_.key = absl::StrCat(what, " ", name);
      CountExpression(PosOf(kv.first));
      if (name.empty()) {
        Error(PosOf(kv.first), absl::StrCat("a name in \"", what, "\" is empty"));
        continue;
      }
      if (!kv.second.IsScalar()) {
        Error(PosOf(kv.second),
              absl::StrCat("\"", what, "\" ", name, ": must be a string, number or boolean"));
        continue;
      }
      out.emplace_back(std::move(name), kv.second.Scalar());
    }
  }

  std::vector<FeatureTerm> ReadMatchAnyElem(const YamlNode& node) {
    if (!node.IsMap()) {
      Error(PosOf(node), "a matchAny element must be a mapping with \"matchFeatures\"");
      return {};
    }
    std::vector<FeatureTerm> terms;
    bool saw = false;
    for (const YamlNode::Pair it : node.pairs()) {
      std::string key = KeyText(it.first);
      if (key == "matchFeatures") {
        saw = true;
        terms = ReadTerms(it.second, "matchFeatures");
      } else {
        Warn(PosOf(it.first), absl::StrCat("unknown key \"", key, "\" in a matchAny element"));
      }
    }
    if (!saw) Error(PosOf(node), "matchAny element without \"matchFeatures\"");
    return terms;
  }

  std::vector<FeatureTerm> ReadTerms(const YamlNode& node, absl::string_view what) {
    std::vector<FeatureTerm> terms;
    if (!node.IsSequence()) {
      Error(PosOf(node), absl::StrCat("\"", what, "\" must be a list of {feature, ...} terms"));
      return terms;
    }
    for (const YamlNode item : node.items()) terms.push_back(ReadTerm(item));
    return terms;
  }

  FeatureTerm ReadTerm(const YamlNode& node) {
    FeatureTerm term;
    term.pos = PosOf(node);
    if (!node.IsMap()) {
      Error(term.pos, "a feature term must be a mapping with \"feature\"");
      return term;
    }
    bool saw_feature = false;
    std::optional<YamlNode> feature = node.Find("feature");
    where_.feature = feature && feature->IsScalar() ? feature->Scalar() : std::string();
    where_.key.clear();
    for (const YamlNode::Pair it : node.pairs()) {
      std::string key = KeyText(it.first);
      const YamlNode value = it.second;
      if (key == "feature") {
        if (ReadScalar(value, "feature", term.feature)) {
          saw_feature = true;
          term.feature = absl::AsciiStrToLower(term.feature);
          if (term.feature.empty()) Error(PosOf(value), "\"feature\" is empty");
          CheckFeatureName(term.feature, PosOf(value));
        }
      } else if (key == "matchExpressions") {
        term.has_match_expressions = true;
        if (value.IsNull()) continue;  // `matchExpressions:` with nothing: an empty set
        if (!value.IsMap()) {
          Error(PosOf(value), "\"matchExpressions\" must map element names to {op, value}");
          continue;
        }
        std::set<std::string> seen;
        for (const YamlNode::Pair e : value.pairs()) {
          std::string element = KeyText(e.first);
          where_.key = element;
          CountExpression(PosOf(e.first));
          if (!seen.insert(element).second) {
            Error(PosOf(e.first), absl::StrCat("duplicate element \"", element, "\""));
            continue;
          }
          CheckCpuidElement(term.feature.empty() ? where_.feature : term.feature, element,
                            PosOf(e.first));
          CheckAttributeElement(term.feature.empty() ? where_.feature : term.feature, element,
                                PosOf(e.first));
          term.match_expressions.emplace_back(element, ReadExpression(e.second));
        }
      } else if (key == "matchName") {
        where_.key = "matchName";
        CountExpression(PosOf(value));
        term.match_name = ReadExpression(value);
      } else {
        Warn(PosOf(it.first), absl::StrCat("unknown key \"", key, "\" in a feature term"));
      }
    }
    if (!saw_feature) Error(term.pos, "feature term without \"feature\"");
    if (!term.has_match_expressions && !term.match_name) {
      Warn(term.pos, "feature term has neither \"matchExpressions\" nor \"matchName\"");
    }
    return term;
  }

  // A feature name that no NFD source publishes (and that is not imgsel's
  // local.feature or NFD's rule.matched) matches no host: a warning with
  // the closest known name, so `cpu.cpuids` is seen before it rules every
  // host out.
  void CheckFeatureName(absl::string_view feature, SourcePos pos) {
    for (absl::string_view known : kNfdFeatureNames) {
      if (feature == known) return;
    }
    absl::string_view closest;
    size_t best = 3;  // a typo: at most two edits away
    for (absl::string_view known : kNfdFeatureNames) {
      if (const size_t d = EditDistance(feature, known); d < best) {
        best = d;
        closest = known;
      }
    }
    Warn(pos,
         absl::StrCat("feature \"", feature, "\" is no feature NFD publishes: it matches no host",
                      closest.empty() ? "" : absl::StrCat("; did you mean \"", closest, "\"?")));
  }

  // Elements of the attribute features whose elements NFD fixes: one no
  // source publishes matches no host.
  void CheckAttributeElement(absl::string_view feature, absl::string_view element, SourcePos pos) {
    const std::string lower = absl::AsciiStrToLower(feature);
    for (const FixedElements& f : kFixedElements) {
      if (f.feature != lower) continue;
      for (absl::string_view known : f.elements) {
        if (known == element) return;
      }
      Warn(pos, absl::StrCat(lower, " has no element \"", element, "\" (it has ",
                             absl::StrJoin(f.elements, ", "), "): it matches no host"));
      return;
    }
  }

  // cpu.cpuid elements are NFD's CPU feature names (klauspost/cpuid's
  // spelling). One the feature table reads as another spelling ("SSE4.2",
  // NFD's "SSE42") or does not know at all matches no host's element: a
  // warning, from the one table the probe and the matcher use.
  void CheckCpuidElement(absl::string_view feature, absl::string_view element, SourcePos pos) {
    if (absl::AsciiStrToLower(feature) != "cpu.cpuid") return;
    std::optional<std::string> canonical = CanonicalFeature(element);
    if (!canonical) {
      Warn(pos, absl::StrCat("cpu.cpuid element \"", element,
                             "\" is no CPU feature imgsel's table knows: it matches no host"));
      return;
    }
    const std::string nfd = NfdCpuidName(*canonical);
    if (nfd != element) {
      Warn(pos, absl::StrCat("cpu.cpuid element \"", element, "\" is spelled \"", nfd,
                             "\" by NFD (and on hosts): as written it matches no host"));
    }
  }

  MatchExpression ReadExpression(const YamlNode& node) {
    MatchExpression e;
    e.pos = PosOf(node);
    if (!node.IsMap()) {
      Error(e.pos, "an expression must be a mapping {op: ..., value: [...]}");
      return e;
    }
    const OpInfo* info = nullptr;
    SourcePos op_pos = e.pos;
    SourcePos value_pos = e.pos;
    SourcePos type_pos = e.pos;
    bool op_ok = false;
    bool values_ok = true;
    for (const YamlNode::Pair it : node.pairs()) {
      std::string key = KeyText(it.first);
      const YamlNode value = it.second;
      if (key == "op") {
        op_pos = PosOf(value);
        std::string name;
        if (!ReadScalar(value, "op", name)) continue;
        info = FindOp(name);
        if (info == nullptr) {
          Error(op_pos, absl::StrCat("unknown op \"", name,
                                     "\" (In NotIn InRegexp Exists DoesNotExist Gt Ge Lt Le GtLt "
                                     "GeLe IsTrue IsFalse)"));
          continue;
        }
        e.op = info->op;
        op_ok = true;
      } else if (key == "value") {
        value_pos = PosOf(value);
        values_ok = ReadValues(value, e.values);
      } else if (key == "type") {
        type_pos = PosOf(value);
        std::string type;
        if (!ReadScalar(value, "type", type)) continue;
        if (type == "version") {
          e.type = ValueType::kVersion;
        } else if (!type.empty()) {
          Error(type_pos, absl::StrCat("unknown type \"", type, "\" (only \"version\")"));
        }
      } else {
        Warn(PosOf(it.first), absl::StrCat("unknown key \"", key, "\" in an expression"));
      }
    }
    if (info == nullptr) {
      if (!op_ok && !node.Find("op")) Error(e.pos, "expression without \"op\"");
      return e;
    }
    if (!values_ok) return e;
    const int n = static_cast<int>(e.values.size());
    if (n < info->min_values || (info->max_values >= 0 && n > info->max_values)) {
      std::string want;
      if (info->max_values == 0) {
        want = "no values";
      } else if (info->max_values < 0) {
        want = "at least one value";
      } else if (info->max_values == 1) {
        want = "exactly one value";
      } else {
        want = "exactly two values";
      }
      Error(n == 0 ? op_pos : value_pos,
            absl::StrCat("op ", info->name, " takes ", want, ", got ", n));
      return e;
    }
    if (e.type == ValueType::kVersion && !info->numeric) {
      Warn(type_pos, absl::StrCat("\"type: version\" has no effect on op ", info->name));
    }
    Compile(e, *info, value_pos);
    return e;
  }

  bool ReadValues(const YamlNode& node, std::vector<std::string>& out) {
    if (node.IsNull()) return true;
    if (node.IsScalar()) {
      out.push_back(node.Scalar());
      return true;
    }
    if (!node.IsSequence()) {
      Error(PosOf(node), "\"value\" must be a list of strings");
      return false;
    }
    if (node.size() > kMaxCompatValues) {
      Error(PosOf(node), absl::StrCat("more than ", kMaxCompatValues,
                                      " values, the limit of one expression", Place()));
      return false;
    }
    bool ok = true;
    for (const YamlNode v : node.items()) {
      if (!v.IsScalar()) {
        Error(PosOf(v), "each value must be a string");
        ok = false;
        continue;
      }
      out.push_back(v.Scalar());
    }
    return ok;
  }

  // Compiles one InRegexp value within the regexp part of the budget: its
  // own memory (RE2 stops compiling past it) and the spec's count and total
  // program size.
  std::shared_ptr<const RE2> CompileRegexp(const std::string& pattern, SourcePos pos) {
    if (++regexps_ > kMaxCompatRegexps) {
      OverBudget(pos,
                 absl::StrCat("more than ", kMaxCompatRegexps, " regexps, the limit of one spec"));
    }
    RE2::Options options;
    options.set_log_errors(false);
    options.set_max_mem(kMaxCompatRegexpMemory);
    auto re = std::make_shared<const RE2>(pattern, options);
    if (re->error_code() == RE2::ErrorPatternTooLarge) {
      OverBudget(
          pos, absl::StrCat("regexp ", Quoted(pattern), " needs more than ", kMaxCompatRegexpMemory,
                            " bytes to compile, the limit of one regexp"));
    }
    if (!re->ok()) {
      Error(pos, absl::StrCat("regexp ", Quoted(pattern), " does not compile: ", re->error()));
      return re;
    }
    regexp_program_size_ += re->ProgramSize();
    if (regexp_program_size_ > kMaxCompatRegexpProgramSize) {
      OverBudget(pos, absl::StrCat("regexps compile to more than ", kMaxCompatRegexpProgramSize,
                                   " instructions, the limit of one spec (this one: ",
                                   re->ProgramSize(), ")"));
    }
    return re;
  }

  // A pattern as messages quote it: long ones cut, so one error stays one line.
  static std::string Quoted(absl::string_view pattern) {
    constexpr size_t kShown = 64;
    if (pattern.size() <= kShown) return absl::StrCat("\"", pattern, "\"");
    return absl::StrCat("\"", pattern.substr(0, kShown), "...\" (", pattern.size(), " bytes)");
  }

  void Compile(MatchExpression& e, const OpInfo& info, SourcePos value_pos) {
    if (e.op == MatchOp::kInRegexp) {
      for (const std::string& pattern : e.values) {
        e.regexps.push_back(CompileRegexp(pattern, value_pos));
      }
      return;
    }
    if (!info.numeric) return;
    for (const std::string& v : e.values) {
      if (e.type == ValueType::kVersion) {
        std::optional<SpecVersion> version = ParseSpecVersion(v);
        if (!version) {
          Error(value_pos, absl::StrCat("\"", v, "\" is not a version (MAJOR[.MINOR[.PATCH]])"));
          continue;
        }
        e.versions.push_back(*version);
      } else {
        std::optional<int64_t> n = ParseSpecInt(v);
        if (!n) {
          Error(value_pos, absl::StrCat("\"", v, "\" is not an integer (op ", info.name,
                                        " compares integers; add \"type: version\" for versions)"));
          continue;
        }
        e.ints.push_back(*n);
      }
    }
    if (e.type == ValueType::kDefault && e.ints.size() == 2 && e.ints[0] >= e.ints[1]) {
      Error(value_pos, absl::StrCat("op ", info.name, ": the first value (", e.ints[0],
                                    ") must be less than the second (", e.ints[1], ")"));
    }
  }

  // ---- Proposal F ----

  void ReadGroupSets(const YamlNode& node, CompatSpec& spec) {
    if (node.IsMap()) {
      CompatSet set;
      set.pos = PosOf(node);
      where_ = {1, {}, {}, {}};
      ReadGroups(node, set);
      spec.sets.push_back(std::move(set));
      return;
    }
    if (!node.IsSequence()) {
      Error(PosOf(node), "\"compatibilities\" must be an object of groups or a list of sets");
      return;
    }
    if (node.size() == 0) Error(PosOf(node), "\"compatibilities\" is empty");
    for (const YamlNode item : node.items()) {
      if (spec.sets.size() == kMaxCompatSets) {
        OverBudget(PosOf(item), absl::StrCat("more than ", kMaxCompatSets,
                                             " compatibility sets, the limit of one spec"));
      }
      where_ = {spec.sets.size() + 1, {}, {}, {}};
      CompatSet set;
      set.pos = PosOf(item);
      if (!item.IsMap()) {
        Error(set.pos, "a compatibility set must be a mapping with \"groups\"");
        continue;
      }
      bool saw_groups = false;
      for (const YamlNode::Pair it : item.pairs()) {
        std::string key = KeyText(it.first);
        if (key == "groups") {
          saw_groups = true;
          if (!it.second.IsMap()) {
            Error(PosOf(it.second), "\"groups\" must be an object of groups");
            continue;
          }
          ReadGroups(it.second, set);
        } else if (key == "weight") {
          ReadWeight(it.second, set.weight);
        } else if (key == "tag") {
          ReadScalar(it.second, "tag", set.tag);
        } else if (key == "description") {
          ReadScalar(it.second, "description", set.description);
        } else {
          Warn(PosOf(it.first), absl::StrCat("unknown key \"", key, "\" in a compatibility set"));
        }
      }
      if (!saw_groups) Error(set.pos, "compatibility set without \"groups\"");
      spec.sets.push_back(std::move(set));
    }
  }

  void ReadGroups(const YamlNode& groups, CompatSet& set) {
    for (const YamlNode::Pair g : groups.pairs()) {
      std::string group = KeyText(g.first);
      if (group.empty()) {
        Error(PosOf(g.first), "a group name must be a non-empty string");
        continue;
      }
      if (!g.second.IsMap()) {
        Error(PosOf(g.second), absl::StrCat("group \"", group, "\" must map keys to values"));
        continue;
      }
      for (const YamlNode::Pair kv : g.second.pairs()) {
        std::string key = KeyText(kv.first);
        where_.key = absl::StrCat(group, ".", key);
        CountExpression(PosOf(kv.first));
        if (key.empty()) {
          Error(PosOf(kv.first), "a key must be a non-empty string");
          continue;
        }
        if (!kv.second.IsScalar()) {
          Error(PosOf(kv.second),
                absl::StrCat("\"", group, ".", key, "\" must be a string, number or boolean"));
          continue;
        }
        set.groups.push_back(
            {absl::StrCat(group, ".", key), kv.second.Scalar(), PosOf(kv.first), group, key});
      }
    }
  }
};

bool IsIdentChar(char c) { return absl::ascii_isalnum(c) || c == '-'; }

// Dot-separated non-empty identifiers of [0-9A-Za-z-].
bool IsIdentList(absl::string_view s) {
  if (s.empty()) return false;
  bool prev_dot = true;
  for (char c : s) {
    if (c == '.') {
      if (prev_dot) return false;
      prev_dot = true;
    } else if (IsIdentChar(c)) {
      prev_dot = false;
    } else {
      return false;
    }
  }
  return !prev_dot;
}

}  // namespace

absl::string_view MatchOpName(MatchOp op) { return InfoFor(op).name; }

std::optional<int64_t> ParseSpecInt(absl::string_view text) {
  if (text.empty()) return std::nullopt;
  bool negative = false;
  if (text[0] == '+' || text[0] == '-') {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  uint64_t magnitude = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), magnitude);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  constexpr uint64_t kMax = static_cast<uint64_t>(INT64_MAX);
  if (negative) {
    if (magnitude > kMax + 1) return std::nullopt;
    return magnitude == kMax + 1 ? INT64_MIN : -static_cast<int64_t>(magnitude);
  }
  if (magnitude > kMax) return std::nullopt;
  return static_cast<int64_t>(magnitude);
}

std::optional<SpecVersion> ParseSpecVersion(absl::string_view text) {
  if (!text.empty() && text[0] == 'v') text.remove_prefix(1);
  // Split off +build, then -pre-release; both must be well formed but are ignored.
  if (size_t plus = text.find('+'); plus != absl::string_view::npos) {
    if (!IsIdentList(text.substr(plus + 1))) return std::nullopt;
    text = text.substr(0, plus);
  }
  if (size_t dash = text.find('-'); dash != absl::string_view::npos) {
    if (!IsIdentList(text.substr(dash + 1))) return std::nullopt;
    text = text.substr(0, dash);
  }
  uint64_t parts[3] = {0, 0, 0};
  int count = 0;
  while (true) {
    if (count == 3) return std::nullopt;
    size_t dot = text.find('.');
    absl::string_view part = text.substr(0, dot);
    if (part.empty()) return std::nullopt;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), parts[count]);
    if (ec != std::errc() || end != part.data() + part.size()) return std::nullopt;
    ++count;
    if (dot == absl::string_view::npos) break;
    text.remove_prefix(dot + 1);
  }
  return SpecVersion{parts[0], parts[1], parts[2]};
}

std::string MatchExpressionString(const MatchExpression& e) {
  std::string out = absl::StrCat("{op: ", MatchOpName(e.op));
  if (!e.values.empty()) absl::StrAppend(&out, ", value: [", absl::StrJoin(e.values, ", "), "]");
  if (e.type == ValueType::kVersion) absl::StrAppend(&out, ", type: version");
  out += "}";
  return out;
}

bool IsJsonMediaType(absl::string_view media_type) { return absl::EndsWith(media_type, "+json"); }

std::optional<SpecFormat> SpecFormatForMediaType(absl::string_view media_type) {
  if (media_type == kNfdSpecLayerType || media_type == kOciCompatNfdLayerType) {
    return SpecFormat::kNfd;
  }
  if (media_type == kOciCompatSpecLayerType || media_type == kK8sNfdCompatSpecLayerType) {
    return SpecFormat::kKeyValueGroups;
  }
  return std::nullopt;
}

namespace {

// Line and column (1-based) of byte `offset` of `text`.
SourcePos PosOfOffset(absl::string_view text, size_t offset) {
  SourcePos pos{1, 1};
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++pos.line;
      pos.column = 1;
    } else {
      ++pos.column;
    }
  }
  return pos;
}

// The line (1-based) of a document marker that starts a second document
// ("---" at the start of a line after content, or content after "..."), or
// 0. Markers stand at column 0, where no content of a document can be.
int SecondDocumentLine(absl::string_view text) {
  bool content = false, ended = false;
  int line = 0;
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    ++line;
    auto marker = [&](absl::string_view m) {
      return absl::StartsWith(l, m) && (l.size() == m.size() || l[m.size()] == ' ' ||
                                        l[m.size()] == '\t' || l[m.size()] == '\r');
    };
    if (marker("---")) {
      if (content || ended) return line;
      content = true;  // the first document's explicit start
      continue;
    }
    if (marker("...")) {
      ended = content;
      continue;
    }
    const absl::string_view t = absl::StripLeadingAsciiWhitespace(l);
    if (t.empty() || t[0] == '#' || (!content && t[0] == '%')) continue;
    if (ended) return line;
    content = true;
  }
  return 0;
}

// Records the first mapping key, in document order, that appears twice in
// one mapping. The tree has no aliases, so this visits each node once.
void FindDuplicateKey(const YamlNode& root, SpecReader& reader) {
  std::optional<YamlNode> first;
  auto earlier = [](const YamlNode& a, const YamlNode& b) {
    return a.pos().line != b.pos().line ? a.pos().line < b.pos().line
                                        : a.pos().column < b.pos().column;
  };
  std::vector<YamlNode> pending = {root};
  while (!pending.empty()) {
    const YamlNode node = pending.back();
    pending.pop_back();
    if (node.IsMap()) {
      std::set<absl::string_view> seen;
      for (const YamlNode::Pair it : node.pairs()) {
        const YamlNode key = it.first;
        if (key.IsScalar() && !seen.insert(key.Scalar()).second &&
            (!first || earlier(key, *first))) {
          first = key;
        }
        pending.push_back(it.second);
      }
    } else if (node.IsSequence()) {
      for (const YamlNode item : node.items()) pending.push_back(item);
    }
  }
  if (first) reader.Error(PosOf(*first), absl::StrCat("duplicate key \"", first->Scalar(), "\""));
}

constexpr absl::string_view kNoAnchors =
    "a spec may not use anchors (&) or aliases (*); write the node out in full";

// The problem that stopped the YAML reader.
std::string YamlErrorMessage(const YamlError& error) {
  switch (error.reason) {
    case YamlError::Reason::kTooManyNodes:
      return absl::StrCat("more than ", kMaxCompatYamlNodes,
                          " YAML nodes, the limit of one spec; the rest is not read");
    case YamlError::Reason::kAnchor:
      return absl::StrCat("YAML anchor \"&", error.message, "\": ", kNoAnchors);
    case YamlError::Reason::kAlias:
      return absl::StrCat("YAML alias: ", kNoAnchors);
    case YamlError::Reason::kSyntax:
      break;
  }
  return absl::StrCat("YAML: ", error.message);
}

// The first JSON syntax error of `bytes` and its byte offset, or nullopt
// for valid JSON. The same grammar as every other JSON imgsel reads
// (json_cursor.h, simdjson's): no trailing comma, every brace closed.
std::optional<std::pair<std::string, size_t>> JsonSyntaxError(absl::string_view bytes) {
  constexpr size_t kMaxJsonDepth = 64;  // the schema needs 6
  std::string padded(bytes);
  padded.append(kJsonPadding, '\0');
  std::string scratch(bytes.size() + kJsonPadding, '\0');
  JsonCursor c(padded.data(), bytes.size(), scratch.data(), kMaxJsonDepth);
  if (c.ok()) {
    JsonCursor::Pos at = c.begin();
    if (c.Skip(at)) c.AtEnd(at);
  }
  if (c.ok()) return std::nullopt;
  const size_t offset = c.error_offset() == std::string::npos ? 0 : c.error_offset();
  return std::pair(c.error_message(), offset);
}

}  // namespace

SpecCheck CheckCompatSpec(absl::string_view bytes, SpecFormat format, bool strict_json) {
  SpecCheck check;
  SpecReader reader;
  if (bytes.size() > kMaxCompatSpecBytes) {
    reader.Error({1, 1}, absl::StrCat("spec is ", bytes.size(), " bytes, more than the limit of ",
                                      kMaxCompatSpecBytes, " bytes of one spec"));
    check.problems = std::move(reader.problems);
    return check;
  }
  if (const size_t bad = FirstNonUtf8Byte(bytes); bad != absl::string_view::npos) {
    reader.Error(PosOfOffset(bytes, bad), absl::StrCat("not UTF-8 (byte ", bad, ")"));
    check.problems = std::move(reader.problems);
    return check;
  }
  if (strict_json) {
    if (auto error = JsonSyntaxError(bytes)) {
      reader.Error(PosOfOffset(bytes, error->second),
                   absl::StrCat("not JSON: ", error->first, " (byte ", error->second, ")"));
      check.problems = std::move(reader.problems);
      return check;
    }
  }
  CompatSpec spec;
  YamlReadResult yaml = ReadYamlTree(bytes, kMaxCompatYamlNodes);
  if (yaml.error) {
    reader.Error({yaml.error->pos.line, yaml.error->pos.column}, YamlErrorMessage(*yaml.error));
  } else if (const int line = SecondDocumentLine(bytes); line > 0) {
    reader.Error({line, 1},
                 "a second YAML document: a spec is one document, and the rest would be lost");
  } else if (std::optional<YamlNode> root = yaml.tree->root(); !root || root->IsNull()) {
    reader.Error({1, 1}, "empty document");
  } else {
    try {
      reader.ReadTop(*root, format, spec);
      // Which of two values for one key a reader takes is not something a
      // spec should leave to chance (the reader names its own cases first).
      if (!reader.HasError()) FindDuplicateKey(*root, reader);
    } catch (const StopReading&) {
      // The problem is recorded; nothing past the bound is read.
    }
  }
  if (!reader.HasError()) check.spec = std::move(spec);
  check.problems = std::move(reader.problems);
  return check;
}

std::string FormatSpecProblem(absl::string_view source, const SpecProblem& problem) {
  absl::string_view severity =
      problem.severity == SpecProblem::Severity::kError ? "error" : "warning";
  if (problem.pos.line <= 0) return absl::StrCat(source, ": ", severity, ": ", problem.message);
  return absl::StrCat(source, ":", problem.pos.line, ":", problem.pos.column, ": ", severity, ": ",
                      problem.message);
}

absl::StatusOr<CompatSpec> ParseCompatSpec(absl::string_view bytes, SpecFormat format,
                                           absl::string_view source, bool strict_json) {
  SpecCheck check = CheckCompatSpec(bytes, format, strict_json);
  if (check.ok()) return std::move(*check.spec);
  // The first few errors: the message travels into fallback reasons and
  // logs, and a spec can hold one error per node.
  constexpr size_t kErrorsShown = 10;
  std::vector<std::string> errors;
  size_t more = 0;
  for (const SpecProblem& p : check.problems) {
    if (p.severity != SpecProblem::Severity::kError) continue;
    if (errors.size() == kErrorsShown) {
      ++more;
      continue;
    }
    errors.push_back(FormatSpecProblem(source, p));
  }
  std::string message = absl::StrJoin(errors, "; ");
  if (more > 0) absl::StrAppend(&message, "; and ", more, " more errors");
  return absl::InvalidArgumentError(message);
}

}  // namespace imgsel
