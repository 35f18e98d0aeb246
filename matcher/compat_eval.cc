#include "matcher/compat_eval.h"

#include <algorithm>
#include <map>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "matcher/nfd_labels.h"
#include "matcher/policy.h"
#include "re2/re2.h"

namespace imgsel {
namespace {

constexpr absl::string_view kMatchExpressionType = "matchExpression";
constexpr absl::string_view kMatchNameType = "matchName";
constexpr absl::string_view kKeyValueType = "keyValue";
constexpr absl::string_view kLocalFeature = "local.feature";

template <typename Map>
const typename Map::mapped_type* Find(const Map& map, const std::string& key) {
  auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

bool IsNumeric(MatchOp op) {
  switch (op) {
    case MatchOp::kGt:
    case MatchOp::kGe:
    case MatchOp::kLt:
    case MatchOp::kLe:
    case MatchOp::kGtLt:
    case MatchOp::kGeLe:
      return true;
    default:
      return false;
  }
}

template <typename T>
bool Compare(MatchOp op, const T& v, const std::vector<T>& bounds) {
  switch (op) {
    case MatchOp::kGt:
      return bounds.size() == 1 && v > bounds[0];
    case MatchOp::kGe:
      return bounds.size() == 1 && v >= bounds[0];
    case MatchOp::kLt:
      return bounds.size() == 1 && v < bounds[0];
    case MatchOp::kLe:
      return bounds.size() == 1 && v <= bounds[0];
    case MatchOp::kGtLt:
      return bounds.size() == 2 && v > bounds[0] && v < bounds[1];
    case MatchOp::kGeLe:
      return bounds.size() == 2 && v >= bounds[0] && v <= bounds[1];
    default:
      return false;
  }
}

// NFD's evaluateMatchExpression: `valid` says whether the element exists,
// `value` is its value (nullptr for a flag element, which has none).
bool EvalOp(const MatchExpression& e, bool valid, const std::string* value, std::string* why) {
  switch (e.op) {
    case MatchOp::kAny:
      return true;
    case MatchOp::kExists:
      if (!valid && why) *why = "not on host";
      return valid;
    case MatchOp::kDoesNotExist:
      if (valid && why) *why = value ? absl::StrCat("present, host: ", *value) : "present";
      return !valid;
    default:
      break;
  }
  if (!valid) {
    if (why) *why = "not on host";
    return false;
  }
  if (value == nullptr) {
    if (why) *why = "a flag has no value";
    return false;
  }
  bool matched = false;
  switch (e.op) {
    case MatchOp::kIn:
      matched = std::find(e.values.begin(), e.values.end(), *value) != e.values.end();
      break;
    case MatchOp::kNotIn:
      matched = std::find(e.values.begin(), e.values.end(), *value) == e.values.end();
      break;
    case MatchOp::kInRegexp:
      for (const auto& re : e.regexps) {
        if (re->ok() && RE2::PartialMatch(*value, *re)) {
          matched = true;
          break;
        }
      }
      break;
    case MatchOp::kIsTrue:
      matched = *value == "true";
      break;
    case MatchOp::kIsFalse:
      matched = *value == "false";
      break;
    default:
      if (!IsNumeric(e.op)) break;
      if (e.type == ValueType::kVersion) {
        std::optional<SpecVersion> v = ParseSpecVersion(*value);
        if (!v) {
          if (why) *why = absl::StrCat("host value \"", *value, "\" is not a version");
          return false;
        }
        matched = Compare(e.op, *v, e.versions);
      } else {
        std::optional<int64_t> v = ParseSpecInt(*value);
        if (!v) {
          if (why) *why = absl::StrCat("host value \"", *value, "\" is not an integer");
          return false;
        }
        matched = Compare(e.op, *v, e.ints);
      }
      break;
  }
  if (!matched && why) *why = absl::StrCat("host: ", *value);
  return matched;
}

ExpressionResult NewResult(const FeatureTerm& term, absl::string_view element,
                           const MatchExpression& e, absl::string_view type) {
  ExpressionResult r;
  r.feature = term.feature;
  r.element = std::string(element);
  r.expression = MatchExpressionString(e);
  r.matcher_type = std::string(type);
  r.op = e.op;
  r.values = e.values;
  r.type = e.type;
  return r;
}

// One feature term, NFD's MatchMulti + MatchNamesMulti. Appends one result per
// expression (and one for matchName) and returns whether the term matched.
bool EvalTerm(const FeatureTerm& term, const NfdFeatures& nfd, std::vector<ExpressionResult>& out) {
  const std::set<std::string>* flags = Find(nfd.flags, term.feature);
  const std::map<std::string, std::string>* attrs = Find(nfd.attributes, term.feature);
  const std::vector<std::map<std::string, std::string>>* instances =
      Find(nfd.instances, term.feature);
  const size_t first = out.size();
  for (const auto& [element, e] : term.match_expressions) {
    out.push_back(NewResult(term, element, e, kMatchExpressionType));
  }
  if (term.match_name) out.push_back(NewResult(term, "", *term.match_name, kMatchNameType));

  if (!flags && !attrs && !instances) {
    for (size_t i = first; i < out.size(); ++i) {
      out[i].detail = absl::StrCat("feature ", term.feature, " not on host");
    }
    return false;
  }

  bool expressions_match = true;
  if (term.has_match_expressions) {
    // Flags and attributes are one union: each expression matches in either;
    // DoesNotExist must hold in both.
    bool union_match = flags != nullptr || attrs != nullptr;
    for (size_t i = 0; i < term.match_expressions.size(); ++i) {
      const auto& [element, e] = term.match_expressions[i];
      ExpressionResult& r = out[first + i];
      bool in_flags = false;
      bool in_attrs = false;
      std::string why;
      if (flags) in_flags = EvalOp(e, flags->count(element) > 0, nullptr, &why);
      if (attrs) {
        const std::string* v = Find(*attrs, element);
        std::string why_attr;
        in_attrs = EvalOp(e, v != nullptr, v, &why_attr);
        if (!why_attr.empty() && (why.empty() || v != nullptr)) why = why_attr;
      }
      bool ok = e.op == MatchOp::kDoesNotExist
                    ? (flags || attrs) && (!flags || in_flags) && (!attrs || in_attrs)
                    : in_flags || in_attrs;
      r.matched = ok;
      if (!ok) r.detail = why;
      union_match = union_match && ok;
    }
    // Instances: one instance must satisfy every expression.
    bool instance_match = false;
    if (instances) {
      std::vector<bool> matched_somewhere(term.match_expressions.size(), false);
      for (const auto& instance : *instances) {
        bool all = true;
        for (size_t i = 0; i < term.match_expressions.size(); ++i) {
          const auto& [element, e] = term.match_expressions[i];
          const std::string* v = Find(instance, element);
          if (EvalOp(e, v != nullptr, v, nullptr)) {
            matched_somewhere[i] = true;
          } else {
            all = false;
          }
        }
        instance_match = instance_match || all;
      }
      for (size_t i = 0; i < term.match_expressions.size(); ++i) {
        ExpressionResult& r = out[first + i];
        if (matched_somewhere[i]) {
          r.matched = true;
          r.detail.clear();
        } else if (!r.matched) {
          r.detail = instances->empty() ? "no instances on host" : "no instance matches";
        }
      }
      if (!instance_match && !union_match) {
        for (size_t i = 0; i < term.match_expressions.size(); ++i) {
          ExpressionResult& r = out[first + i];
          if (r.matched && matched_somewhere[i]) {
            r.detail = "no single instance matches every expression of the term";
          }
        }
      }
    }
    expressions_match = union_match || instance_match;
  }

  bool name_match = true;
  if (term.match_name) {
    const MatchExpression& e = *term.match_name;
    name_match = false;
    auto try_name = [&](const std::string& name) {
      if (!name_match && EvalOp(e, true, &name, nullptr)) name_match = true;
    };
    if (flags) {
      for (const std::string& name : *flags) try_name(name);
    }
    if (attrs) {
      for (const auto& [name, value] : *attrs) try_name(name);
    }
    if (instances) {
      for (const auto& instance : *instances) {
        for (const auto& [name, value] : instance) try_name(name);
      }
    }
    ExpressionResult& r = out.back();
    r.matched = name_match;
    if (!name_match) r.detail = "no element name matches";
  }
  return expressions_match && name_match;
}

bool EvalTerms(const std::vector<FeatureTerm>& terms, const NfdFeatures& nfd,
               std::vector<ExpressionResult>& out) {
  bool all = true;
  for (const FeatureTerm& term : terms) all = EvalTerm(term, nfd, out) && all;
  return all;
}

RuleResult EvalRule(const CompatRule& rule, const NfdFeatures& nfd) {
  RuleResult r;
  r.name = rule.name;
  bool features = EvalTerms(rule.match_features, nfd, r.match_features);
  bool any = rule.match_any.empty();
  for (const auto& elem : rule.match_any) {
    AnyElemResult a;
    a.matched = EvalTerms(elem, nfd, a.expressions);
    any = any || a.matched;
    r.match_any.push_back(std::move(a));
  }
  r.matched = features && any;
  return r;
}

// Proposal F lookup order: local.feature by the full key, then
// <feature>.<element> in attributes, then flags.
std::optional<std::string> HostAttribute(const NfdFeatures& nfd, const std::string& key) {
  if (const auto* local = Find(nfd.attributes, std::string(kLocalFeature))) {
    if (const std::string* v = Find(*local, key)) return *v;
  }
  size_t dot = key.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == key.size()) return std::nullopt;
  std::string feature = absl::AsciiStrToLower(key.substr(0, dot));
  std::string element = key.substr(dot + 1);
  if (const auto* attrs = Find(nfd.attributes, feature)) {
    if (const std::string* v = Find(*attrs, element)) return *v;
  }
  if (const auto* flags = Find(nfd.flags, feature)) {
    return flags->count(element) > 0 ? "true" : "false";
  }
  return std::nullopt;
}

// Proposal F keys under the operator's GroupPolicy; `optional_matched`
// counts the optional keys that matched (each weighs optional_key_weight).
RuleResult EvalGroups(const CompatSet& set, const NfdFeatures& nfd,
                      const std::map<std::string, std::string>& labels, const GroupPolicy& policy,
                      int64_t& optional_matched) {
  RuleResult r;
  r.name = absl::StrCat("groups (", policy.Describe(), ")");
  r.matched = true;
  for (const GroupRequirement& g : set.groups) {
    ExpressionResult e;
    e.feature = g.key;
    e.expression = absl::StrCat("== ", g.value);
    e.matcher_type = std::string(kKeyValueType);
    e.op = MatchOp::kIn;
    e.values = {g.value};
    const bool nfd_label = policy.IsNfd(g.group);
    const bool required = policy.IsRequired(g.group);
    std::optional<std::string> host =
        nfd_label ? NfdLabelValue(labels, g.name) : HostAttribute(nfd, g.key);
    e.matched = host && *host == g.value;
    if (!host) {
      e.detail = nfd_label ? "no NFD label of that name" : "not on host";
    } else if (!e.matched) {
      e.detail = absl::StrCat("host: ", *host);
    }
    if (!required) {
      e.decides = false;
      if (e.matched) {
        ++optional_matched;
        e.detail = absl::StrCat("optional, adds ", policy.optional_key_weight);
      } else {
        absl::StrAppend(&e.detail, "; optional");
      }
    } else if (!host && policy.ignore_unknown_keys) {
      e.decides = false;
      absl::StrAppend(&e.detail, "; ignored (unknown key)");
    } else {
      r.matched = r.matched && e.matched;
    }
    r.match_features.push_back(std::move(e));
  }
  return r;
}

}  // namespace

bool SpecResult::matched() const {
  return std::any_of(sets.begin(), sets.end(), [](const SetResult& s) { return s.matched; });
}

std::optional<int64_t> SpecResult::best_weight() const {
  std::optional<int64_t> best;
  for (const SetResult& s : sets) {
    if (s.matched && (!best || s.weight > *best)) best = s.weight;
  }
  return best;
}

SpecResult EvaluateCompatSpec(const CompatSpec& spec, const HostProfile& host,
                              const GroupPolicy& groups) {
  SpecResult result;
  std::map<std::string, std::string> labels;
  for (const CompatSet& set : spec.sets) {
    if (!set.groups.empty()) {
      labels = NfdLabels(host.nfd);
      break;
    }
  }
  result.name = spec.name;
  result.sets.reserve(spec.sets.size());
  // NFD's back-references (validate-node): after each rule that matches,
  // its labels and vars join the attribute feature rule.matched, which
  // stays for the rules after it, in this set and the next ones. Only a
  // spec that sets any has its own copy of the host's features.
  const bool backrefs = std::any_of(spec.sets.begin(), spec.sets.end(), [](const CompatSet& set) {
    return std::any_of(set.rules.begin(), set.rules.end(),
                       [](const CompatRule& r) { return !r.labels.empty() || !r.vars.empty(); });
  });
  std::optional<NfdFeatures> with_backrefs;
  if (backrefs) with_backrefs = host.nfd;
  const NfdFeatures& nfd = backrefs ? *with_backrefs : host.nfd;
  for (size_t i = 0; i < spec.sets.size(); ++i) {
    const CompatSet& set = spec.sets[i];
    SetResult s;
    s.index = i;
    s.weight = set.weight;
    s.tag = set.tag;
    s.description = set.description;
    s.matched = true;
    for (const CompatRule& rule : set.rules) {
      s.rules.push_back(EvalRule(rule, nfd));
      s.matched = s.matched && s.rules.back().matched;
      if (backrefs && s.rules.back().matched) {
        auto& matched = with_backrefs->attributes[std::string(kRuleMatchedFeature)];
        for (const auto& [k, v] : rule.labels) matched[k] = v;
        for (const auto& [k, v] : rule.vars) matched[k] = v;
      }
    }
    if (!set.groups.empty()) {
      int64_t optional_matched = 0;
      s.rules.push_back(EvalGroups(set, host.nfd, labels, groups, optional_matched));
      s.matched = s.matched && s.rules.back().matched;
      // Both factors are within kMaxPreferenceWeight and a set holds at most
      // kMaxCompatExpressions keys, so the product cannot overflow; the sum
      // is kept in range as every weight is.
      s.weight = std::clamp<int64_t>(set.weight + optional_matched * groups.optional_key_weight,
                                     -kMaxPreferenceWeight, kMaxPreferenceWeight);
    }
    result.sets.push_back(std::move(s));
  }
  return result;
}

}  // namespace imgsel
