#include "matcher/compat_eval.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

RuleResult EvalGroups(const CompatSet& set, const NfdFeatures& nfd) {
  RuleResult r;
  r.name = "groups";
  r.matched = true;
  for (const GroupRequirement& g : set.groups) {
    ExpressionResult e;
    e.feature = g.key;
    e.expression = absl::StrCat("== ", g.value);
    e.matcher_type = std::string(kKeyValueType);
    e.op = MatchOp::kIn;
    e.values = {g.value};
    std::optional<std::string> host = HostAttribute(nfd, g.key);
    e.matched = host && *host == g.value;
    if (!host) {
      e.detail = "not on host";
    } else if (!e.matched) {
      e.detail = absl::StrCat("host: ", *host);
    }
    r.matched = r.matched && e.matched;
    r.match_features.push_back(std::move(e));
  }
  return r;
}

std::string ExpressionLabel(const ExpressionResult& e) {
  return e.element.empty() ? e.feature : absl::StrCat(e.feature, ".", e.element);
}

void RenderExpressions(const std::vector<ExpressionResult>& rows, absl::string_view indent,
                       std::string& out) {
  size_t w_label = 0;
  size_t w_expr = 0;
  size_t w_type = 0;
  for (const ExpressionResult& e : rows) {
    w_label = std::max(w_label, ExpressionLabel(e).size());
    w_expr = std::max(w_expr, e.expression.size());
    w_type = std::max(w_type, e.matcher_type.size());
  }
  auto pad = [](std::string s, size_t w) {
    s.resize(std::max(w, s.size()), ' ');
    return s;
  };
  for (const ExpressionResult& e : rows) {
    absl::StrAppend(&out, indent, pad(ExpressionLabel(e), w_label), "  ", pad(e.expression, w_expr),
                    "  ", pad(e.matcher_type, w_type), "  ", e.matched ? "OK" : "FAIL");
    if (!e.detail.empty()) absl::StrAppend(&out, " (", e.detail, ")");
    out += "\n";
  }
}

void WriteExpressions(const std::vector<ExpressionResult>& rows, JsonWriter& out) {
  out.BeginArray();
  for (const ExpressionResult& e : rows) {
    out.BeginObject();
    out.Key("feature").String(e.feature);
    out.Key("name").String(e.element);
    out.Key("expression").BeginObject();
    out.Key("op").String(MatchOpName(e.op));
    if (!e.values.empty()) {
      out.Key("value").BeginArray();
      for (const std::string& v : e.values) out.String(v);
      out.EndArray();
    }
    if (e.type == ValueType::kVersion) out.Key("type").String("version");
    out.EndObject();
    out.Key("matcherType").String(e.matcher_type);
    out.Key("isMatch").Bool(e.matched);
    if (!e.detail.empty()) out.Key("detail").String(e.detail);
    out.EndObject();
  }
  out.EndArray();
}

// "set #2 [tag avx512]".
std::string SetLabel(const SetResult& s) {
  std::string label = absl::StrCat("set #", s.index + 1);
  if (!s.tag.empty()) absl::StrAppend(&label, " [tag ", s.tag, "]");
  return label;
}

// The first failing expression of a set, for a one-line reason.
std::string FirstFailure(const SetResult& s) {
  for (const RuleResult& r : s.rules) {
    if (r.matched) continue;
    std::string where = absl::StrCat("rule \"", r.name, "\"");
    for (const ExpressionResult& e : r.match_features) {
      if (e.matched) continue;
      std::string line =
          absl::StrCat(where, ": ", ExpressionLabel(e), " ", e.expression, " failed");
      if (!e.detail.empty()) absl::StrAppend(&line, " (", e.detail, ")");
      return line;
    }
    if (!r.match_any.empty()) return absl::StrCat(where, ": no matchAny element matched");
    return absl::StrCat(where, " failed");
  }
  return "failed";
}

// The first set that earned the artifact its weight, with its profile name.
std::string BestSetLabel(const ArtifactResult& r) {
  for (const SpecResult& s : r.specs) {
    for (const SetResult& set : s.sets) {
      if (set.matched && set.weight == *r.weight) {
        return absl::StrCat(s.name.empty() ? "" : s.name + " ", SetLabel(set));
      }
    }
  }
  return "a set";
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

SpecResult EvaluateCompatSpec(const CompatSpec& spec, const HostProfile& host) {
  SpecResult result;
  result.name = spec.name;
  result.sets.reserve(spec.sets.size());
  for (size_t i = 0; i < spec.sets.size(); ++i) {
    const CompatSet& set = spec.sets[i];
    SetResult s;
    s.index = i;
    s.weight = set.weight;
    s.tag = set.tag;
    s.description = set.description;
    s.matched = true;
    for (const CompatRule& rule : set.rules) {
      s.rules.push_back(EvalRule(rule, host.nfd));
      s.matched = s.matched && s.rules.back().matched;
    }
    if (!set.groups.empty()) {
      s.rules.push_back(EvalGroups(set, host.nfd));
      s.matched = s.matched && s.rules.back().matched;
    }
    result.sets.push_back(std::move(s));
  }
  return result;
}

std::string RenderCompatResultText(const SpecResult& result) {
  std::string out;
  if (!result.name.empty()) absl::StrAppend(&out, "PROFILE ", result.name, "\n");
  for (const SetResult& s : result.sets) {
    absl::StrAppend(&out, "COMPATIBILITY SET #", s.index + 1, " Weight: ", s.weight);
    if (!s.tag.empty()) absl::StrAppend(&out, "; Tag: ", s.tag);
    absl::StrAppend(&out, " - ", s.matched ? "OK" : "FAIL", "\n");
    absl::StrAppend(&out, "Description: ", s.description, "\n");
    for (const RuleResult& r : s.rules) {
      absl::StrAppend(&out, "  RULE: ", absl::AsciiStrToUpper(r.name), " - ",
                      r.matched ? "OK" : "FAIL", "\n");
      RenderExpressions(r.match_features, "    ", out);
      for (size_t i = 0; i < r.match_any.size(); ++i) {
        absl::StrAppend(&out, "    matchAny #", i + 1, " - ",
                        r.match_any[i].matched ? "OK" : "FAIL", "\n");
        RenderExpressions(r.match_any[i].expressions, "      ", out);
      }
    }
    out += "\n";
  }
  return out;
}

void WriteCompatResultJson(const SpecResult& result, JsonWriter& out) {
  out.BeginArray();
  for (const SetResult& s : result.sets) {
    out.BeginObject();
    out.Key("rules").BeginArray();
    for (const RuleResult& r : s.rules) {
      out.BeginObject();
      out.Key("name").String(r.name);
      out.Key("isMatch").Bool(r.matched);
      out.Key("matchedExpressions");
      WriteExpressions(r.match_features, out);
      if (!r.match_any.empty()) {
        out.Key("matchedAny").BeginArray();
        for (const AnyElemResult& a : r.match_any) {
          out.BeginObject();
          out.Key("isMatch").Bool(a.matched);
          out.Key("matchedExpressions");
          WriteExpressions(a.expressions, out);
          out.EndObject();
        }
        out.EndArray();
      }
      out.EndObject();
    }
    out.EndArray();
    out.Key("description").String(s.description);
    out.Key("weight").Int(s.weight);
    out.Key("tag").String(s.tag);
    out.Key("isMatch").Bool(s.matched);
    out.EndObject();
  }
  out.EndArray();
}

std::optional<absl::Time> ParseCreatedAnnotation(absl::string_view key, absl::string_view value) {
  if (key != "org.opencontainers.image.created" && key != "oci.opencontainers.image.created") {
    return std::nullopt;
  }
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, value, &t, &err)) return std::nullopt;
  return t;
}

std::optional<absl::Time> ArtifactCreated(
    absl::FunctionRef<std::optional<absl::string_view>(absl::string_view key)> annotation) {
  for (const char* key : {"org.opencontainers.image.created", "oci.opencontainers.image.created"}) {
    const std::optional<absl::string_view> value = annotation(key);
    if (!value) continue;
    if (auto t = ParseCreatedAnnotation(key, *value)) return t;
  }
  return std::nullopt;
}

std::optional<absl::Time> ArtifactCreated(const std::map<std::string, std::string>& annotations) {
  return ArtifactCreated([&](absl::string_view key) -> std::optional<absl::string_view> {
    auto it = annotations.find(std::string(key));
    if (it == annotations.end()) return std::nullopt;
    return absl::string_view(it->second);
  });
}

std::vector<size_t> NewestOfEachKind(
    size_t count, absl::FunctionRef<absl::string_view(size_t)> kind_of,
    absl::FunctionRef<std::optional<absl::Time>(size_t)> created_of) {
  std::vector<size_t> chosen;  // one per kind, in first-seen order
  std::vector<std::optional<absl::Time>> times;
  for (size_t i = 0; i < count; ++i) {
    const std::optional<absl::Time> t = created_of(i);
    const absl::string_view kind = kind_of(i);
    size_t k = 0;
    while (k < chosen.size() && kind_of(chosen[k]) != kind) ++k;
    if (k == chosen.size()) {
      chosen.push_back(i);
      times.push_back(t);
    } else if (t && (!times[k] || *t > *times[k])) {
      chosen[k] = i;
      times[k] = t;
    }
  }
  return chosen;
}

std::vector<size_t> NewestArtifacts(absl::Span<const CompatArtifact> artifacts) {
  return NewestOfEachKind(
      artifacts.size(), [&](size_t i) -> absl::string_view { return artifacts[i].kind; },
      [&](size_t i) { return ArtifactCreated(artifacts[i].annotations); });
}

ArtifactResult EvaluateArtifact(const CompatArtifact& a, bool on_index, const HostProfile& host) {
  ArtifactResult r;
  r.id = a.id;
  r.kind = a.kind;
  r.on_index = on_index;
  for (const CompatSpec& spec : a.specs) {
    SpecResult s = EvaluateCompatSpec(spec, host);
    if (std::optional<int64_t> w = s.best_weight(); w && (!r.weight || *w > *r.weight)) {
      r.weight = w;
    }
    r.specs.push_back(std::move(s));
  }
  r.matched = r.weight.has_value();
  return r;
}

CompatVerdict CombineArtifactResults(absl::Span<const ArtifactResult* const> results) {
  CompatVerdict v;
  v.passed = true;
  v.weight = 0;
  std::optional<int64_t> best;
  for (const ArtifactResult* r : results) {
    std::string head = absl::StrCat("compat: ", r->on_index ? "index" : "entry", " artifact ",
                                    r->id.empty() ? "(unnamed)" : r->id, " (", r->kind, "): ");
    if (r->matched) {
      if (!best || *r->weight > *best) best = r->weight;
      v.reasons.push_back(absl::StrCat(head, BestSetLabel(*r), " matched, weight ", *r->weight));
      continue;
    }
    v.passed = false;
    std::vector<std::string> failures;
    for (const SpecResult& s : r->specs) {
      for (const SetResult& set : s.sets) {
        failures.push_back(absl::StrCat(s.name.empty() ? "" : s.name + " ", SetLabel(set), ": ",
                                        FirstFailure(set)));
      }
    }
    if (failures.empty()) failures.push_back("no spec");
    v.reasons.push_back(absl::StrCat(head, "no set matched: ", absl::StrJoin(failures, "; ")));
  }
  if (v.passed && best) v.weight = *best;
  return v;
}

EntryCompat EvaluateEntryCompat(absl::Span<const CompatArtifact> entry_artifacts,
                                absl::Span<const CompatArtifact> index_artifacts,
                                const HostProfile& host) {
  EntryCompat out;
  for (size_t i : NewestArtifacts(index_artifacts)) {
    out.artifacts.push_back(EvaluateArtifact(index_artifacts[i], true, host));
  }
  for (size_t i : NewestArtifacts(entry_artifacts)) {
    out.artifacts.push_back(EvaluateArtifact(entry_artifacts[i], false, host));
  }
  std::vector<const ArtifactResult*> results;
  for (const ArtifactResult& r : out.artifacts) results.push_back(&r);
  out.verdict = CombineArtifactResults(results);
  return out;
}

}  // namespace imgsel
