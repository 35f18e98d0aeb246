// Compatibility results as text (the `RESULT` tree `imgsel validate` and
// the explanations print) and as JSON (decision JSON, the Selector API).
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "matcher/compat_eval.h"
#include "matcher/compat_labels.h"

namespace imgsel {

namespace compat_internal {

std::string ExpressionLabel(const ExpressionResult& e) {
  return e.element.empty() ? e.feature : absl::StrCat(e.feature, ".", e.element);
}

std::string SetLabel(const SetResult& s) {
  std::string label = absl::StrCat("set #", s.index + 1);
  if (!s.tag.empty()) absl::StrAppend(&label, " [tag ", s.tag, "]");
  return label;
}

std::string FirstFailure(const SetResult& s) {
  for (const RuleResult& r : s.rules) {
    if (r.matched) continue;
    std::string where = absl::StrCat("rule \"", r.name, "\"");
    for (const ExpressionResult& e : r.match_features) {
      if (e.matched || !e.decides) continue;
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

}  // namespace compat_internal

namespace {

using compat_internal::ExpressionLabel;

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

}  // namespace

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

}  // namespace imgsel
