// Selection: from a parsed index, a host profile and a policy to a Decision.
//
// kBest, per candidate in index order:
//   1. unusable descriptor (bad digest, size, types)       -> rejected
//   2. not an image manifest (nested index, a mediaType that is not a
//      manifest, a descriptor declaring an artifactType)   -> rejected
//   3. platform not in the host's vector, os.version or os.features the
//      host does not run (platform.h)                       -> rejected
//      An entry without platform is decided by its image config's
//      os/architecture when the caller read it (SelectOptions::
//      config_platforms), as containerd does; either way it ranks last.
//   4. what its `features` need (features.h: names, levels, implications)
//      is not all on the host, or a name nobody knows    -> rejected
//      (unknown and malformed names are passed over, and named, with
//      Policy::unknown_features = kIgnore). The host has its listed
//      features, what they imply and what its platform level guarantees.
//   5. compatibility artifacts evaluated and none matched   -> rejected
//
// Survivors are ranked by, in turn:
//   score desc        annotation weights + compatibility weight, summed
//                     with saturation (a sum never wraps)
//   platform rank asc position in the host's vector; no platform last
//   os.version desc   Windows hosts only, compared as strings, as
//                     containerd's Windows comparer does
//   specificity desc  see below
//   os.features count desc
//   index position asc
// With no weights and no features this is containerd's first match.
//
// Specificity. Among entries tied so far, one ranks above another when what
// it needs strictly contains what the other needs; otherwise the author's
// order decides (Proposal E: generic entry first, more specific preferred
// when plainly more specific). The ranking that sorts is each entry's depth
// in that containment order among the tied eligible entries: the length of
// the longest chain of strictly smaller need sets below it. Worked examples,
// all on one AVX-512 host, entries tied on score and platform:
//   [generic, avx2, avx512f]   depths 0, 1, 2 -> avx512f, avx2, generic
//   [avx512f, "avx2,fma"]      avx512f needs avx2 and avx but not fma:
//                              incomparable, depths 0, 0 -> author's order,
//                              avx512f first
//   [x86-64-v3, "avx2,bmi2,fma,..." listing v3's own features]
//                              equal sets: depths equal -> author's order
//   ["avx2,avx2,AVX2", avx2]   spelled three times is one need: equal
//   [sse4.2, neon-only, avx2]  sse4.2 (0) < avx2 (1); neon-only (0) is
//                              incomparable with both -> avx2, sse4.2,
//                              neon-only (depth, then author's order)
// A depth is a linear extension of the containment order: if A's need
// strictly contains B's, A's depth is greater.
//
// kFirstMatch reproduces containerd: platform only, with the host as
// containerd's default sees it (no amd64 level, arm64 as v8).
//
// No I/O, and the answer depends on the inputs alone; thread-safe. What is
// kept between calls, all thread_local, none of it visible in an answer:
//   - the host's platform vector per policy and its feature closure, from
//     the last call (the same for every selection on a node), compared by
//     value on each call and rebuilt when the host differs (unless the
//     caller hands in a PreparedHost, below);
//   - the ranks of up to 32 platforms entries wrote (os, architecture,
//     variant, os.version), per policy, for the matcher that ranked them;
//   - scratch vectors for need sets, tie groups, os.version order and the
//     candidates' reordering (dropped past 1024 entries), and the
//     explanation's text buffer, cleared at the start of each use, so a
//     warm call allocates nothing for them.
// Each thread holds them until it exits (a few KiB for a 1024-entry index).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "matcher/features.h"
#include "matcher/host_profile.h"
#include "matcher/index.h"
#include "matcher/platform.h"
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
  kArtifact,  // text: the artifactType
  kPlatformMismatch,
  kOsVersionMismatch,
  kOsFeaturesMissing,  // text: the missing os.features
  kPlatformMatch,      // value: platform rank
  kNoPlatform,
  kConfigPlatform,          // text: the platform its image config names
  kConfigPlatformMismatch,  // text: the platform its image config names
  kMissingFeatures,         // text: the missing names
  kUnknownFeatures,         // text: the unknown names
  kUnknownIgnored,          // text: the unknown names passed over
  kFeaturesSatisfied,       // text: the names, as written
  kCompatDetail,            // text: one line of the compatibility evaluation
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
  // Depth in the containment order of what tied entries need (select.h).
  int specificity = 0;
  int os_features = 0;
  // What this entry needs is a strict subset of what the winner needs.
  bool need_within_winner = false;
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
  std::string host_os_version;           // the host's os.version, if any
  bool windows_host = false;             // os.version orders entries (select.h)

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

// What Select works out from a host before it looks at any entry: the
// platform vector of each policy, the host's platform as answers name it and
// its feature closure. Without one, Select keeps the last host's per thread
// and compares the host by value on every call (its whole feature set:
// about 1.5k instructions a call for a host of 20 features); a caller that
// selects many times for one host it never changes (the pipeline's own
// host) builds this once instead.
//
// Holds `host` by reference: `host` must outlive it and must not change
// while it lives. Thread-safe (const use only).
class PreparedHost {
 public:
  explicit PreparedHost(const HostProfile& host);
  PreparedHost(const PreparedHost&) = delete;
  PreparedHost& operator=(const PreparedHost&) = delete;

  const HostProfile& host() const { return host_; }
  const PlatformMatcher& matcher(PolicyKind kind) const {
    return kind == PolicyKind::kBest ? best_ : first_match_;
  }
  // FormatPlatform(matcher(kind).host()).
  const std::string& platform(PolicyKind kind) const {
    return kind == PolicyKind::kBest ? best_platform_ : first_match_platform_;
  }
  // What the host lists, what that implies and what its level guarantees.
  const FeatureSet& feature_closure() const { return closure_; }

 private:
  const HostProfile& host_;
  PlatformMatcher best_, first_match_;
  std::string best_platform_, first_match_platform_;
  FeatureSet closure_;
};

struct SelectOptions {
  PolicyKind kind = PolicyKind::kBest;
  // Built from the very `host` object Select is given (compared by
  // address); otherwise ignored.
  const PreparedHost* prepared_host = nullptr;
  // Verdicts keyed by entry digest; nullptr or a missing key: no artifacts.
  const std::map<std::string, CompatVerdict>* compat = nullptr;
  // For entries without a platform: the os/architecture[/variant] their
  // image config names, keyed by entry digest; nullptr or a missing key:
  // not read.
  const std::map<std::string, Platform>* config_platforms = nullptr;
};

// a + b, clamped to int64's range instead of wrapping.
int64_t SaturatingAdd(int64_t a, int64_t b);

Decision Select(ParsedIndex index, const HostProfile& host, const Policy& policy,
                const SelectOptions& options = {});

// The positions, in index order, of the entries Select would call eligible
// with the same inputs (steps 1-5 above): which entries could win at all.
// No ranking, no reasons, no explanation text: a caller that only needs
// that set (the pipeline, to know whose compatibility artifacts to list)
// pays a walk of the index and no Select. Empty for a single manifest.
// Same rules, same thread-local host caches, same thread-safety as Select.
std::vector<size_t> EligibleEntries(const ParsedIndex& index, const HostProfile& host,
                                    const Policy& policy, const SelectOptions& options = {});

}  // namespace imgsel
