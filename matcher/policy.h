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

// An entry earns `weight` when it carries annotation `annotation` and, if
// given, its value equals `value` or `value_regex` finds a match in it
// (unanchored, RE2, as NFD's InRegexp). Weights may be negative.
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

}  // namespace imgsel
