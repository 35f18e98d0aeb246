// What the operator wants, in matcher terms: weighted annotation preferences
// (Proposal A) and how to treat feature names nobody knows.
//
// The config module builds a Policy from imgsel.toml (`[[prefer]]`, merged
// with `[handlers.<name>]` for a CRI runtime handler). Immutable once built;
// safe to share between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "re2/re2.h"

namespace imgsel {

// The largest weight, either way, that a `[[prefer]]` rule of the config or
// a set of a compatibility spec may carry; both readers refuse anything
// further out. An entry's score is the sum of its prefer weights (at most
// 2 x 1,024 rules: the global ones and a runtime handler's) and one spec
// weight, so |score| <= 2,049 x 10^6, far inside int64 (and even int32):
// no sum of weights can overflow, whatever a config or a spec says. A
// million is still far more range than any ranking needs.
inline constexpr int64_t kMaxPreferenceWeight = 1'000'000;

// An entry earns `weight` when it carries annotation `annotation` and, if
// given, its value equals `value` or `value_regex` finds a match in it
// (unanchored, RE2, as NFD's InRegexp). Weights may be negative, within
// kMaxPreferenceWeight.
struct PreferRule {
  std::string annotation;
  std::optional<std::string> value;
  std::shared_ptr<const RE2> value_regex;
  int64_t weight = 0;
  std::string origin;  // where it was written: "imgsel.toml:12"

  bool Matches(const std::optional<absl::string_view>& annotation_value) const;
};

enum class UnknownFeatures { kReject, kIgnore };

enum class PolicyKind {
  kBest,        // DESIGN.md "Selection, precisely"
  kFirstMatch,  // containerd's own choice: platform only, host without amd64 level
};

struct Policy {
  std::vector<PreferRule> prefer;
  UnknownFeatures unknown_features = UnknownFeatures::kReject;
};

const char* PolicyKindName(PolicyKind kind);

// How Proposal F key/value groups are read. The proposal says an artifact
// holds the minimum requirements and may hold more "for optimal usage", and
// leaves the line to the tool: here it is the operator's (imgsel.toml
// [compat.groups]); every explanation of a groups set states it.
struct GroupPolicy {
  // Groups whose every key is a requirement; "*" is every group. A key of
  // another group is optional: it never fails its set, and when it matches
  // it adds optional_key_weight to the set's weight.
  std::vector<std::string> required = {"*"};
  int64_t optional_key_weight = 1;
  // A required key the host has no value for: false fails its set (as a
  // requirement nobody can confirm), true passes over it (listed).
  bool ignore_unknown_keys = false;
  // Groups whose keys are NFD label names (matcher/nfd_labels.h) rather
  // than host attributes.
  std::vector<std::string> nfd_groups = {"nfd", "io.kubernetes.nfd", "feature.node.kubernetes.io"};

  bool IsRequired(absl::string_view group) const;
  bool IsNfd(absl::string_view group) const;
  // "required: *; optional key weight 1; unknown key: fails", for explanations.
  std::string Describe() const;
};

}  // namespace imgsel
