#include "matcher/select.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <type_traits>

#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "matcher/features.h"
#include "matcher/string_view_bridge.h"

namespace imgsel {
namespace {

bool IsImageManifest(absl::string_view media_type) {
  return media_type == kOciManifestMediaType || media_type == kDockerManifestMediaType;
}

bool IsIndex(absl::string_view media_type) {
  return media_type == kOciIndexMediaType || media_type == kDockerListMediaType;
}

// containerd's default host: it never detects an amd64 level and calls every
// arm64 host v8.
Platform ContainerdDefaultHost(Platform p) {
  if (p.architecture == "amd64" || p.architecture == "arm64") p.variant.clear();
  return p;
}

// Equality for the short strings of platforms ("amd64", "v3"): a byte loop
// the compiler keeps inline, where operator== calls memcmp for every pair of
// equal-length strings.
inline bool ShortEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// The host's platform vector is the same for every selection on a node, so
// each thread keeps the last one built for each policy. The reference is
// good until this thread's next call.
const PlatformMatcher& MatcherFor(const Platform& host, PolicyKind kind) {
  struct Cached {
    Platform host;
    std::optional<PlatformMatcher> matcher;
  };
  thread_local Cached cached[2];
  Cached& slot = cached[kind == PolicyKind::kBest ? 0 : 1];
  if (!slot.matcher || !(slot.host == host)) {
    slot.host = host;
    slot.matcher.emplace(host);
  }
  return *slot.matcher;
}

int EffectiveRank(const Candidate& c) { return c.platform_rank < 0 ? INT_MAX : c.platform_rank; }

// An entry's platform as a part of a sentence (see Sentence::Add).
struct EntryPlatform {
  const Descriptor& entry;
};

// One reason sentence at a time, written through a raw position into a
// buffer the thread keeps: its capacity is reused from one sentence and one
// call to the next, and a std::string append per piece cost more than the
// pieces. One Sentence per thread at a time.
class Sentence {
 public:
  Sentence() : buf_(Buffer()) {}
  Sentence(const Sentence&) = delete;
  Sentence& operator=(const Sentence&) = delete;

  void Clear() { at_ = 0; }
  absl::string_view View() const { return {buf_.data(), at_}; }

  // Appends each part in turn: text as it is, a number in decimal, an
  // entry's platform formatted.
  template <typename... Parts>
  void Add(const Parts&... parts) {
    (AddOne(parts), ...);
  }

 private:
  static std::string& Buffer() {
    thread_local std::string buffer;
    return buffer;
  }
  void Append(absl::string_view s) {
    if (s.empty()) return;  // an empty view may have no data for memcpy
    if (buf_.size() - at_ < s.size()) [[unlikely]] {
      buf_.resize(std::max(2 * buf_.size() + 256, at_ + s.size()));
    }
    std::memcpy(buf_.data() + at_, s.data(), s.size());
    at_ += s.size();
  }
  template <typename T>
  void AddOne(const T& part) {
    if constexpr (std::is_same_v<T, EntryPlatform>) {
      if (part.entry.platform) {
        AppendPlatform(*part.entry.platform, [this](absl::string_view s) { Append(s); });
      } else {
        Append("(none)");
      }
    } else if constexpr (std::is_integral_v<T>) {
      Append(absl::AlphaNum(part).Piece());
    } else {
      Append(absl::string_view(part));
    }
  }

  std::string& buf_;
  size_t at_ = 0;
};

// Adds why `loser` is ranked below `winner` to `out`: the first ranking key
// that differs.
void AddLostBecause(const Candidate& loser, const Candidate& winner, Sentence& out) {
  out.Add("ranked below position ", winner.position, ": ");
  if (loser.score != winner.score) {
    out.Add("lower score (", loser.score, " < ", winner.score, ")");
  } else if (EffectiveRank(loser) != EffectiveRank(winner)) {
    if (loser.platform_rank < 0) {
      out.Add("no platform (ranked last)");
    } else {
      out.Add("less specific platform (rank ", loser.platform_rank, " > ", winner.platform_rank,
              ")");
    }
  } else if (loser.features_satisfied != winner.features_satisfied) {
    out.Add("fewer required features satisfied (", loser.features_satisfied, " < ",
            winner.features_satisfied, ")");
  } else if (loser.os_features != winner.os_features) {
    out.Add("fewer os.features (", loser.os_features, " < ", winner.os_features, ")");
  } else {
    out.Add("tie, later in the index");
  }
}

std::string RuleLabel(const PreferRule& rule) {
  std::string what = rule.annotation;
  if (rule.value) absl::StrAppend(&what, "=", *rule.value);
  if (rule.value_regex) absl::StrAppend(&what, "~", rule.value_regex->pattern());
  if (!rule.origin.empty()) absl::StrAppend(&what, " (", rule.origin, ")");
  return what;
}

}  // namespace

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

size_t Decision::eligible_count() const {
  size_t n = 0;
  for (const auto& c : candidates) n += c.eligible ? 1 : 0;
  return n;
}

void ForEachReason(const Decision& decision, const Candidate& c,
                   absl::FunctionRef<void(absl::string_view)> sink) {
  const Descriptor& d = decision.index.manifests[c.position];
  // `sink` must not call ForEachReason itself: the sentence's buffer is the
  // thread's.
  Sentence line;
  auto emit = [&](const auto&... parts) {
    line.Clear();
    line.Add(parts...);
    sink(line.View());
  };
  for (uint32_t i = c.reasons_begin; i < c.reasons_end; ++i) {
    const Reason& r = decision.reasons[i];
    switch (r.code) {
      case ReasonCode::kInvalid:
        emit("rejected: ", d.invalid_reason);
        break;
      case ReasonCode::kNestedIndex:
        sink("rejected: a nested index (imgsel selects among manifests only)");
        break;
      case ReasonCode::kNotManifest:
        emit("rejected: mediaType \"", d.media_type, "\" is not an image manifest");
        break;
      case ReasonCode::kPlatformMismatch:
        emit("rejected: platform ", EntryPlatform{d}, " does not run on host ",
             decision.host_platform);
        break;
      case ReasonCode::kPlatformMatch:
        emit("platform ", EntryPlatform{d}, " matches host ", decision.host_platform, " (rank ",
             r.value, ")");
        break;
      case ReasonCode::kNoPlatform:
        sink("no platform: accepted, ranked after entries with one");
        break;
      case ReasonCode::kMissingFeatures:
        emit("rejected: requires ", decision.texts[r.index], ", which this host lacks");
        break;
      case ReasonCode::kUnknownFeatures:
        emit("rejected: requires unknown feature ", decision.texts[r.index],
             " (set [features] unknown = \"ignore\" to allow)");
        break;
      case ReasonCode::kFeaturesSatisfied:
        emit("requires ", r.value, " feature", r.value == 1 ? "" : "s", ", all present");
        break;
      case ReasonCode::kCompatDetail:
        sink(decision.texts[r.index]);
        break;
      case ReasonCode::kCompatFailed:
        sink("rejected: no compatibility set of its artifacts matches this host");
        break;
      case ReasonCode::kCompatWeight:
        emit(r.value > 0 ? "+" : "", r.value, " from the matching compatibility set");
        break;
      case ReasonCode::kPrefer:
        emit(r.value >= 0 ? "+" : "", r.value, " from prefer ", decision.rule_labels[r.index]);
        break;
    }
  }
  if (&c == decision.selected()) {
    size_t eligible = decision.eligible_count();
    emit("selected: best of ", eligible, " eligible entr", eligible == 1 ? "y" : "ies", " (score ",
         c.score, ")");
  } else if (c.eligible) {
    line.Clear();
    AddLostBecause(c, *decision.selected(), line);
    sink(line.View());
  }
}

std::vector<std::string> ExplainCandidate(const Decision& decision, const Candidate& c) {
  std::vector<std::string> out;
  ForEachReason(decision, c, [&](absl::string_view line) { out.emplace_back(line); });
  return out;
}

Decision Select(ParsedIndex index, const HostProfile& host, const Policy& policy,
                const SelectOptions& options) {
  Decision decision;
  decision.policy = options.kind;
  decision.index = std::move(index);
  if (decision.index.kind == DocumentKind::kManifest) {
    decision.nothing_to_choose = true;
    return decision;
  }
  const bool best = options.kind == PolicyKind::kBest;
  const PlatformMatcher& matcher =
      best ? MatcherFor(host.platform, options.kind)
           : MatcherFor(ContainerdDefaultHost(host.platform), options.kind);
  decision.host_platform = FormatPlatform(matcher.host());
  if (best) {
    decision.rule_labels.reserve(policy.prefer.size());
    for (const auto& rule : policy.prefer) decision.rule_labels.push_back(RuleLabel(rule));
  }

  const absl::Span<const Descriptor> manifests = decision.index.manifests;
  std::vector<Candidate>& out = decision.candidates;
  std::vector<Reason>& reasons = decision.reasons;
  // Every candidate is written in place, in index order (a candidate built
  // on the stack and copied in stalled on store forwarding); the answer's
  // order is made at the end.
  out.reserve(manifests.size());
  reasons.reserve(manifests.size() * 2);
  // Looked up at most once per distinct name (feature_memo below).
  auto has_feature = [&](absl::string_view f) {
    return host.features.find(ToStd(f)) != host.features.end();
  };
  // Indexes repeat a handful of platforms and feature names over many
  // entries: each distinct one is worked out once per selection.
  struct RankMemo {
    absl::string_view os, arch, variant, os_version;
    std::optional<int> rank;
  };
  absl::InlinedVector<RankMemo, 16> rank_memo;
  auto rank_of = [&](const PlatformView& p) -> std::optional<int> {
    if (!p.os_features.empty()) return matcher.Rank(p);
    for (const RankMemo& m : rank_memo) {
      // Lengths first: most entries of the memo differ in one of them.
      if (m.arch.size() != p.architecture.size() || m.variant.size() != p.variant.size() ||
          m.os.size() != p.os.size() || m.os_version.size() != p.os_version.size()) {
        continue;
      }
      if (ShortEquals(m.arch, p.architecture) && ShortEquals(m.variant, p.variant) &&
          ShortEquals(m.os, p.os) && ShortEquals(m.os_version, p.os_version)) {
        return m.rank;
      }
    }
    std::optional<int> rank = matcher.Rank(p);
    if (rank_memo.size() < 16) {
      rank_memo.push_back({p.os, p.architecture, p.variant, p.os_version, rank});
    }
    return rank;
  };
  enum class FeatureState : uint8_t { kSatisfied, kMissing, kUnknown, kUnknownIgnored };
  absl::InlinedVector<std::pair<absl::string_view, FeatureState>, 32> feature_memo;
  auto feature_state = [&](absl::string_view name) {
    for (const auto& [n, state] : feature_memo) {
      if (n == name) return state;
    }
    FeatureState state = FeatureState::kSatisfied;
    absl::Span<const absl::string_view> canon = CanonicalFeatureViews(name);
    if (canon.empty()) {
      // A name only the operator declared for this host is still known.
      if (!has_feature(absl::AsciiStrToLower(name))) {
        state = policy.unknown_features == UnknownFeatures::kReject ? FeatureState::kUnknown
                                                                    : FeatureState::kUnknownIgnored;
      }
    } else {
      for (absl::string_view f : canon) {
        if (!has_feature(f)) state = FeatureState::kMissing;
      }
    }
    if (feature_memo.size() < 32) feature_memo.emplace_back(name, state);
    return state;
  };
  for (size_t i = 0; i < manifests.size(); ++i) {
    const Descriptor& d = manifests[i];
    Candidate& c = out.emplace_back();  // reserved: the reference stays valid
    c.position = i;
    c.reasons_begin = static_cast<uint32_t>(reasons.size());
    auto add = [&](ReasonCode code, int64_t value = 0, uint32_t idx = 0) {
      reasons.push_back(Reason{code, idx, value});
    };
    auto add_text = [&](ReasonCode code, std::string text) {
      decision.texts.push_back(std::move(text));
      add(code, 0, static_cast<uint32_t>(decision.texts.size() - 1));
    };
    auto reject = [&] { c.reasons_end = static_cast<uint32_t>(reasons.size()); };
    if (!d.invalid_reason.empty()) {
      add(ReasonCode::kInvalid);
      reject();
      continue;
    }
    if (IsIndex(d.media_type)) {
      add(ReasonCode::kNestedIndex);
      reject();
      continue;
    }
    if (!IsImageManifest(d.media_type)) {
      add(ReasonCode::kNotManifest);
      reject();
      continue;
    }
    if (d.platform) {
      std::optional<int> rank = rank_of(*d.platform);
      if (!rank) {
        add(ReasonCode::kPlatformMismatch);
        reject();
        continue;
      }
      c.platform_rank = *rank;
      c.os_features = static_cast<int>(d.platform->os_features.size());
      add(ReasonCode::kPlatformMatch, *rank);
    } else {
      add(ReasonCode::kNoPlatform);
    }
    if (best && d.platform && !d.platform->features.empty()) {
      std::string missing, unknown;
      int satisfied = 0;
      for (absl::string_view name : d.platform->features) {
        switch (feature_state(name)) {
          case FeatureState::kSatisfied:
            ++satisfied;
            break;
          case FeatureState::kUnknownIgnored:
            break;
          case FeatureState::kUnknown:
            absl::StrAppend(&unknown, unknown.empty() ? "" : ", ", name);
            break;
          case FeatureState::kMissing:
            // The rare path: spell out which canonical names are missing.
            absl::Span<const absl::string_view> canon = CanonicalFeatureViews(name);
            for (absl::string_view f : canon) {
              if (has_feature(f)) continue;
              absl::StrAppend(&missing, missing.empty() ? "" : ", ", f);
              if (canon.size() > 1) absl::StrAppend(&missing, " (from ", name, ")");
            }
            break;
        }
      }
      if (!missing.empty()) {
        add_text(ReasonCode::kMissingFeatures, std::move(missing));
        reject();
        continue;
      }
      if (!unknown.empty()) {
        add_text(ReasonCode::kUnknownFeatures, std::move(unknown));
        reject();
        continue;
      }
      c.features_satisfied = satisfied;
      add(ReasonCode::kFeaturesSatisfied, satisfied);
    }
    if (best && options.compat && !options.compat->empty()) {
      if (auto it = options.compat->find(std::string(d.digest)); it != options.compat->end()) {
        const CompatVerdict& v = it->second;
        for (const auto& line : v.reasons) add_text(ReasonCode::kCompatDetail, line);
        if (!v.passed) {
          add(ReasonCode::kCompatFailed);
          reject();
          continue;
        }
        if (v.weight != 0) {
          c.score += v.weight;
          add(ReasonCode::kCompatWeight, v.weight);
        }
      }
    }
    // A rule only counts for an entry carrying its annotation: most entries
    // carry none, and skip the rules altogether.
    if (best && !d.annotations.empty()) {
      for (uint32_t r = 0; r < policy.prefer.size(); ++r) {
        const PreferRule& rule = policy.prefer[r];
        if (!rule.Matches(d.Annotation(rule.annotation))) continue;
        c.score += rule.weight;
        add(ReasonCode::kPrefer, rule.weight, r);
      }
    }
    c.eligible = true;
    c.reasons_end = static_cast<uint32_t>(reasons.size());
  }

  // Eligible best first (Better, through a packed key: score desc, platform
  // rank asc, features desc, os.features desc, position asc); rejected after,
  // in index order.
  struct Key {
    int64_t score;
    uint64_t rest;
    bool operator<(const Key& o) const {
      return score != o.score ? score > o.score : rest < o.rest;
    }
    bool operator==(const Key& o) const { return score == o.score && rest == o.rest; }
  };
  // The key without the position: the candidates are in index order, so
  // within one such key they are already in position order.
  auto group_key = [](const Candidate& c) {
    uint64_t rank = static_cast<uint64_t>(std::min(EffectiveRank(c), 0xFFFF));
    uint64_t features = 0xFFFF - static_cast<uint64_t>(std::min(c.features_satisfied, 0xFFFF));
    uint64_t os_features = 0xFFFF - static_cast<uint64_t>(std::min(c.os_features, 0xFFFF));
    return Key{c.score, rank << 48 | features << 32 | os_features << 16};
  };
  // Entries share a handful of keys (a few platforms, a few scores): order
  // the distinct keys, then take each key's candidates in index order. An
  // index with many distinct keys is sorted whole.
  constexpr size_t kMaxGroups = 32;
  struct Group {
    Key key;
    uint32_t count = 0;
  };
  absl::InlinedVector<Group, kMaxGroups> groups;
  thread_local std::vector<uint8_t> group_of;
  group_of.resize(out.size());
  bool grouped = true;
  size_t eligible = 0;
  for (size_t k = 0; k < out.size(); ++k) {
    if (!out[k].eligible) continue;
    ++eligible;
    if (!grouped) continue;
    const Key key = group_key(out[k]);
    size_t g = 0;
    while (g < groups.size() && !(groups[g].key == key)) ++g;
    if (g == groups.size()) {
      if (groups.size() == kMaxGroups) {
        grouped = false;
        continue;
      }
      groups.push_back({key, 0});
    }
    ++groups[g].count;
    group_of[k] = static_cast<uint8_t>(g);
  }
  if (eligible == out.size() && groups.size() <= 1) return decision;  // already in order
  thread_local std::vector<uint32_t> order;
  order.clear();
  if (grouped) {
    // Each group's first slot in the answer, in key order.
    absl::InlinedVector<uint32_t, kMaxGroups> by_key(groups.size());
    for (uint32_t g = 0; g < groups.size(); ++g) by_key[g] = g;
    std::sort(by_key.begin(), by_key.end(),
              [&](uint32_t a, uint32_t b) { return groups[a].key < groups[b].key; });
    absl::InlinedVector<uint32_t, kMaxGroups> next(groups.size());
    uint32_t at = 0;
    for (uint32_t g : by_key) {
      next[g] = at;
      at += groups[g].count;
    }
    order.resize(eligible);
    for (uint32_t k = 0; k < out.size(); ++k) {
      if (out[k].eligible) order[next[group_of[k]]++] = k;
    }
  } else {
    std::vector<std::pair<Key, uint32_t>> keyed;
    keyed.reserve(eligible);
    for (uint32_t k = 0; k < out.size(); ++k) {
      if (!out[k].eligible) continue;
      Key key = group_key(out[k]);
      key.rest |= static_cast<uint64_t>(std::min<size_t>(out[k].position, 0xFFFF));
      keyed.emplace_back(key, k);
    }
    std::sort(keyed.begin(), keyed.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [key, k] : keyed) order.push_back(k);
  }
  std::vector<Candidate> ranked;
  ranked.reserve(out.size());
  for (uint32_t k : order) ranked.push_back(out[k]);
  for (const Candidate& c : out) {
    if (!c.eligible) ranked.push_back(c);
  }
  out.swap(ranked);
  return decision;
}

}  // namespace imgsel
