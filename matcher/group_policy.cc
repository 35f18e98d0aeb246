// GroupPolicy (policy.h): how Proposal F key/value groups are read.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "matcher/policy.h"

namespace imgsel {

namespace {
bool Listed(const std::vector<std::string>& groups, absl::string_view group) {
  for (const std::string& g : groups) {
    if (g == "*" || g == group) return true;
  }
  return false;
}
}  // namespace

bool GroupPolicy::IsRequired(absl::string_view group) const { return Listed(required, group); }

bool GroupPolicy::IsNfd(absl::string_view group) const {
  for (const std::string& g : nfd_groups) {
    if (g == group) return true;
  }
  return false;
}

std::string GroupPolicy::Describe() const {
  return absl::StrCat("required: ", required.empty() ? "none" : absl::StrJoin(required, ","),
                      "; optional key weight ", optional_key_weight,
                      "; unknown key: ", ignore_unknown_keys ? "ignored" : "fails");
}

}  // namespace imgsel
