// Prefer rules of a policy: which annotation values a rule matches, and
// how a rule is named in explanations.
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "matcher/select.h"
#include "matcher/select_internal.h"

namespace imgsel {

namespace select_internal {

std::string RuleLabel(const PreferRule& rule) {
  std::string what = rule.annotation;
  if (rule.value) absl::StrAppend(&what, "=", *rule.value);
  if (rule.value_regex) absl::StrAppend(&what, "~", rule.value_regex->pattern());
  if (!rule.origin.empty()) absl::StrAppend(&what, " (", rule.origin, ")");
  return what;
}

}  // namespace select_internal

bool PreferRule::Matches(const std::optional<absl::string_view>& annotation_value) const {
  if (!annotation_value) return false;
  if (value) return *annotation_value == *value;
  if (value_regex) {
    return RE2::PartialMatch(re2::StringPiece(annotation_value->data(), annotation_value->size()),
                             *value_regex);
  }
  return true;
}

const char* PolicyKindName(PolicyKind kind) {
  return kind == PolicyKind::kBest ? "best" : "first-match";
}

}  // namespace imgsel
