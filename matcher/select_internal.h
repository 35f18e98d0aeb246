// Pieces of matcher/select.cc that its explanation (select_explain.cc) and
// prefer-rule matching (prefer_rule.cc) share. Internal to the matcher.
#pragma once

#include <climits>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "matcher/select.h"

namespace imgsel::select_internal {

// Reason::index of kFeaturesSatisfied when every name the entry lists is
// satisfied: the sentence is made from the entry, not from a kept text.
inline constexpr uint32_t kAllWrittenNames = UINT32_MAX;

// The platform rank that sorts: no platform ranks last.
inline int EffectiveRank(const Candidate& c) {
  return c.platform_rank < 0 ? INT_MAX : c.platform_rank;
}

inline absl::string_view OsVersionOf(const Decision& d, const Candidate& c) {
  const Descriptor& e = d.index.manifests[c.position];
  return e.platform ? e.platform->os_version : absl::string_view();
}

// A feature name for a sentence: as written when well-formed; otherwise
// quoted, with every byte outside printable ASCII as \xNN, cut at 64 bytes
// (it came from the index, which anyone may write).
std::string QuotedName(absl::string_view name);

// How a prefer rule is named in explanations: annotation[=value|~regex]
// (origin).
std::string RuleLabel(const PreferRule& rule);

}  // namespace imgsel::select_internal
