// Selection: from a parsed index, a host profile and a policy to a Decision.
//
// kBest, per candidate in index order:
//   1. unusable descriptor (bad digest, size, types)       -> rejected
//   2. not an image manifest (nested index, artifact)       -> rejected
//   3. platform not in the host's vector (platform.h)       -> rejected
//      (an entry without platform is accepted, ranked last)
//   4. a `features` entry the host lacks, or nobody knows   -> rejected
//      (unknown names pass with Policy::unknown_features = kIgnore)
//   5. compatibility artifacts evaluated and none matched   -> rejected
// Survivors are ranked by: score desc (annotation weights + compatibility
// weight), platform rank asc, satisfied features desc, os.features count desc,
// index position asc. With no weights and no features this is containerd's
// first match.
//
// kFirstMatch reproduces containerd: platform only, with the host as
// containerd's default sees it (no amd64 level, arm64 as v8).
//
// Pure function; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "matcher/host_profile.h"
#include "matcher/index.h"
#include "matcher/policy.h"

namespace imgsel {

// The outcome of evaluating the compatibility artifacts that apply to one
// entry (its own and the index's), computed by the caller with the rule
// engine. An entry without artifacts has no verdict.
struct CompatVerdict {
  bool passed = true;
  int64_t weight = 0;
  std::vector<std::string> reasons;  // one line per artifact/set evaluated
};

// Why a candidate was rejected, or what counted for it. Stored compactly
// (selection runs on every pull); ExplainCandidate renders the text.
enum class ReasonCode : uint8_t {
  kInvalid,  // text: the parse problem
  kNestedIndex,
  kNotManifest,
  kPlatformMismatch,
  kPlatformMatch,  // value: platform rank
  kNoPlatform,
  kMissingFeatures,    // text: the missing names
  kUnknownFeatures,    // text: the unknown names
  kFeaturesSatisfied,  // value: count
  kCompatDetail,       // text: one line of the compatibility evaluation
  kCompatFailed,
  kCompatWeight,  // value: weight
  kPrefer,        // index: rule, value: weight
};

struct Reason {
  ReasonCode code;
  uint32_t index = 0;  // into Decision::rule_labels or Decision::texts
  int64_t value = 0;
};

struct Candidate {
  size_t position = 0;  // index in ParsedIndex::manifests
  bool eligible = false;
  int64_t score = 0;
  int platform_rank = -1;  // -1: no platform (ranked last) or rejected
  int features_satisfied = 0;
  int os_features = 0;
  uint32_t reasons_begin = 0;  // [begin, end) in Decision::reasons
  uint32_t reasons_end = 0;
};

struct Decision {
  PolicyKind policy = PolicyKind::kBest;
  bool fallback = false;
  std::string fallback_reason;
  bool nothing_to_choose = false;  // the document is a single manifest
  ParsedIndex index;
  // Eligible candidates best first, then rejected ones in index order.
  std::vector<Candidate> candidates;
  std::vector<Reason> reasons;
  std::vector<std::string> texts;        // the few reasons that carry text
  std::vector<std::string> rule_labels;  // "com.example.gpu=nvidia (imgsel.toml:7:1)"
  std::string host_platform;             // "linux/amd64/v3", as matched

  // The winner, or nullptr when nothing fits.
  const Candidate* selected() const {
    return !candidates.empty() && candidates.front().eligible ? &candidates.front() : nullptr;
  }
  const Descriptor* selected_descriptor() const {
    const Candidate* c = selected();
    return c ? &index.manifests[c->position] : nullptr;
  }
  size_t eligible_count() const;
};

// Every reason of a candidate as a sentence, the winner's and losers'
// comparison included ("ranked below position 1: lower score (0 < 10)").
std::vector<std::string> ExplainCandidate(const Decision& decision, const Candidate& candidate);
// The same sentences, handed to `sink` one at a time (each view is good only
// during the call): no vector, and one buffer per thread reused for all of
// them, so `sink` must not call ForEachReason itself.
void ForEachReason(const Decision& decision, const Candidate& candidate,
                   absl::FunctionRef<void(absl::string_view)> sink);

struct SelectOptions {
  PolicyKind kind = PolicyKind::kBest;
  // Verdicts keyed by entry digest; nullptr or a missing key: no artifacts.
  const std::map<std::string, CompatVerdict>* compat = nullptr;
};

Decision Select(ParsedIndex index, const HostProfile& host, const Policy& policy,
                const SelectOptions& options = {});

}  // namespace imgsel
