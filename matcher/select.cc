#include "matcher/select.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <tuple>
#include <type_traits>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "matcher/dcheck.h"
#include "matcher/features.h"
#include "matcher/select_internal.h"
#include "matcher/string_view_bridge.h"

namespace imgsel {
namespace {

using select_internal::EffectiveRank;
using select_internal::kAllWrittenNames;
using select_internal::OsVersionOf;
using select_internal::QuotedName;
using select_internal::RuleLabel;

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

}  // namespace

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t out;
  if (__builtin_add_overflow(a, b, &out)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return out;
}

namespace {

// The host's features as the matcher believes them: what it lists, what
// that implies and what its platform level guarantees. The same for every
// selection on a node, so each thread keeps the last one (compared by
// value: a set of short names and a platform).
struct HostFeatures {
  std::set<std::string, std::less<>> listed;
  std::string architecture, variant;
  FeatureSet closure;
};

FeatureSet ComputeFeatureClosure(const HostProfile& host) {
  const Platform normal = NormalizePlatform(host.platform);
  FeatureSet closure = PlatformLevelFeatures(normal.architecture, normal.variant);
  for (const std::string& f : host.features) {
    if (const FeatureSet* need = FeatureNeed(f)) closure |= *need;
  }
  return closure;
}

const FeatureSet& HostFeatureClosure(const HostProfile& host) {
  thread_local std::optional<HostFeatures> cached;
  if (cached && cached->architecture == host.platform.architecture &&
      cached->variant == host.platform.variant && cached->listed == host.features) {
    return cached->closure;
  }
  HostFeatures h;
  h.listed = host.features;
  h.architecture = host.platform.architecture;
  h.variant = host.platform.variant;
  h.closure = ComputeFeatureClosure(host);
  cached = std::move(h);
  return cached->closure;
}

// Rank answers for the platforms entries write, kept per thread across
// calls for one matcher (by its id): a node's indexes repeat a handful of
// platforms, and ranking one (normalising its names, walking the host's
// vector) costs ten times looking it up. Only platforms without os.features
// are kept (those are ranked afresh: a list would make the key long), at
// most kMaxRanked of them; the strings are copies, the index they came from
// is gone by the next call.
class RankMemo {
 public:
  static constexpr size_t kMaxRanked = 32;

  // The rank of `p` (os.features empty) by `matcher`, from memory or made now.
  std::optional<int> Rank(const PlatformMatcher& matcher, const PlatformView& p,
                          PlatformMiss& why) {
    if (matcher_id_ != matcher.id()) {
      known_.clear();
      matcher_id_ = matcher.id();
    }
    const uint64_t lengths = Lengths(p.os, p.architecture, p.variant, p.os_version);
    for (const Known& k : known_) {
      // Lengths first, all four in one comparison: most entries of the memo
      // differ in one of them.
      if (k.lengths != lengths) continue;
      if (ShortEquals(k.arch, p.architecture) && ShortEquals(k.variant, p.variant) &&
          ShortEquals(k.os, p.os) && ShortEquals(k.os_version, p.os_version)) {
        why = k.why;
        return k.rank;
      }
    }
    std::optional<int> rank = matcher.Rank(p, &why);
    if (known_.size() < kMaxRanked) {
      known_.push_back({lengths, std::string(p.os), std::string(p.architecture),
                        std::string(p.variant), std::string(p.os_version), rank, why});
    }
    return rank;
  }

 private:
  // The four lengths, 16 bits each; a longer name makes a key that matches
  // only itself or a name of another length colliding with it, which the
  // byte comparison then tells apart.
  static uint64_t Lengths(absl::string_view os, absl::string_view arch, absl::string_view variant,
                          absl::string_view os_version) {
    return uint64_t{os.size() & 0xFFFF} << 48 | uint64_t{arch.size() & 0xFFFF} << 32 |
           uint64_t{variant.size() & 0xFFFF} << 16 | uint64_t{os_version.size() & 0xFFFF};
  }
  struct Known {
    uint64_t lengths;
    std::string os, arch, variant, os_version;
    std::optional<int> rank;
    PlatformMiss why;
  };
  uint64_t matcher_id_ = 0;  // ids start at 1
  std::vector<Known> known_;
};

// What the entries of one selection need, each distinct set once (indexes
// repeat a few feature lists over many entries). Id 0 is the empty set.
class NeedSets {
 public:
  // Past this many distinct sets an entry's set is not shared, only kept.
  static constexpr size_t kMaxShared = 256;

  void Reset() { sets_.assign(1, FeatureSet()); }
  uint32_t Id(const FeatureSet& set) {
    if (set.none()) return 0;
    const size_t scan = std::min(sets_.size(), kMaxShared);
    for (size_t i = 1; i < scan; ++i) {
      if (sets_[i] == set) return static_cast<uint32_t>(i);
    }
    sets_.push_back(set);
    return static_cast<uint32_t>(sets_.size() - 1);
  }
  const FeatureSet& operator[](uint32_t id) const { return sets_[id]; }
  size_t size() const { return sets_.size(); }

 private:
  std::vector<FeatureSet> sets_;
};

// Depths in the containment order of the distinct sets `ids` (one tie
// group): 1 + the greatest depth among strict subsets. Quadratic in the
// distinct sets of the group, which are few; past kMaxDepthSets (a hostile
// index) the size of the set stands in for the depth - still a linear
// extension of containment, no longer the author's order between
// incomparable sets.
constexpr size_t kMaxDepthSets = 512;

// The most candidates whose scratch copy a thread keeps between calls.
constexpr size_t kMaxKeptCandidates = 1024;

// `ids` are the need ids of one tie group's members; on return `depth[i]`
// is member i's depth.
void AssignDepths(const NeedSets& sets, absl::Span<const uint32_t> ids, absl::Span<int> depth) {
  // The distinct ids: a group repeats a few, so a linear scan while they are
  // few, a sort once they are many.
  absl::InlinedVector<uint32_t, 16> distinct;
  for (uint32_t id : ids) {
    if (distinct.size() > 64) {
      distinct.assign(ids.begin(), ids.end());
      std::sort(distinct.begin(), distinct.end());
      distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
      break;
    }
    if (std::find(distinct.begin(), distinct.end(), id) == distinct.end()) distinct.push_back(id);
  }
  if (distinct.size() < 2) return;  // every member needs the same: all depth 0
  std::sort(distinct.begin(), distinct.end());
  absl::InlinedVector<int, 16> d(distinct.size(), 0);
  if (distinct.size() == 2) {
    // The usual group (entries needing nothing and entries needing one
    // list): one set is one deeper exactly when it strictly contains the
    // other, what the general walk below finds with a sort and counts.
    const FeatureSet& a = sets[distinct[0]];
    const FeatureSet& b = sets[distinct[1]];
    if (a != b) {
      d[0] = (b & ~a).none() ? 1 : 0;
      d[1] = (a & ~b).none() ? 1 : 0;
    }
  } else if (distinct.size() > kMaxDepthSets) {
    for (size_t i = 0; i < distinct.size(); ++i) d[i] = static_cast<int>(sets[distinct[i]].count());
  } else {
    absl::InlinedVector<std::pair<size_t, size_t>, 16> by_size;  // (count, index in distinct)
    for (size_t i = 0; i < distinct.size(); ++i) by_size.emplace_back(sets[distinct[i]].count(), i);
    std::sort(by_size.begin(), by_size.end());
    for (size_t i = 0; i < by_size.size(); ++i) {
      const FeatureSet& mine = sets[distinct[by_size[i].second]];
      int best = 0;
      for (size_t j = 0; j < i; ++j) {
        if (by_size[j].first < by_size[i].first &&
            (sets[distinct[by_size[j].second]] & ~mine).none()) {
          best = std::max(best, d[by_size[j].second] + 1);
        }
      }
      d[by_size[i].second] = best;
    }
  }
  for (size_t m = 0; m < ids.size(); ++m) {
    depth[m] = d[std::lower_bound(distinct.begin(), distinct.end(), ids[m]) - distinct.begin()];
  }
#ifndef NDEBUG
  // The depths extend the containment order: a strictly larger need is
  // strictly deeper (checked on groups small enough to check pairwise).
  if (distinct.size() <= 64) {
    for (size_t i = 0; i < distinct.size(); ++i) {
      for (size_t j = 0; j < distinct.size(); ++j) {
        const FeatureSet& a = sets[distinct[i]];
        const FeatureSet& b = sets[distinct[j]];
        if (a != b && (b & ~a).none()) IMGSEL_DCHECK(d[i] > d[j]);
      }
    }
  }
#endif
}

}  // namespace

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
  const PreparedHost* prepared =
      options.prepared_host != nullptr && &options.prepared_host->host() == &host
          ? options.prepared_host
          : nullptr;
  const PlatformMatcher& matcher =
      prepared != nullptr ? prepared->matcher(options.kind)
      : best              ? MatcherFor(host.platform, options.kind)
                          : MatcherFor(ContainerdDefaultHost(host.platform), options.kind);
  decision.host_platform =
      prepared != nullptr ? prepared->platform(options.kind) : FormatPlatform(matcher.host());
  decision.host_os_version = matcher.host().os_version;
  decision.windows_host = matcher.host().os == "windows";
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
  // What each candidate needs, as an id into `needs` (0, the empty set, for
  // most); only read to break ties.
  thread_local NeedSets needs;
  thread_local std::vector<uint32_t> need_of;
  needs.Reset();
  need_of.assign(manifests.size(), 0);
  const FeatureSet* host_closure = nullptr;  // built on the first entry with features
  // A name only the operator declared for this host is still known.
  auto declared = [&](absl::string_view f) {
    return host.features.find(absl::AsciiStrToLower(f)) != host.features.end();
  };
  // Indexes repeat a handful of platforms and feature names over many
  // entries: each distinct platform is ranked once per thread and host
  // (RankMemo), each feature name once per selection.
  // One memo per policy: each has its own matcher, and a caller may mix them.
  thread_local RankMemo rank_memos[2];
  RankMemo& rank_memo = rank_memos[best ? 0 : 1];
  auto rank_of = [&](const PlatformView& p, PlatformMiss& why) -> std::optional<int> {
    if (!p.os_features.empty()) return matcher.Rank(p, &why);
    return rank_memo.Rank(matcher, p, why);
  };
  auto closure = [&]() -> const FeatureSet* {
    return prepared != nullptr ? &prepared->feature_closure() : &HostFeatureClosure(host);
  };
  enum class FeatureState : uint8_t { kSatisfied, kMissing, kUnknown, kUnknownIgnored };
  struct FeatureMemo {
    absl::string_view name;
    FeatureState state;
    const FeatureSet* need;  // nullptr for unknown names
  };
  absl::InlinedVector<FeatureMemo, 32> feature_memo;
  auto feature_state = [&](absl::string_view name) -> FeatureMemo {
    for (const FeatureMemo& m : feature_memo) {
      if (m.name == name) return m;
    }
    FeatureMemo m{name, FeatureState::kSatisfied, FeatureNeed(name)};
    if (m.need == nullptr) {
      if (!IsWellFormedFeatureName(name) || !declared(name)) {
        m.state = policy.unknown_features == UnknownFeatures::kReject
                      ? FeatureState::kUnknown
                      : FeatureState::kUnknownIgnored;
      }
    } else {
      if (host_closure == nullptr) host_closure = closure();
      if ((*m.need & ~*host_closure).any()) m.state = FeatureState::kMissing;
    }
    if (feature_memo.size() < 32) feature_memo.push_back(m);
    return m;
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
    if (!d.artifact_type.empty()) {
      // An OCI 1.1 artifact (its descriptor says so), not an image, even
      // with an image manifest's mediaType.
      add_text(ReasonCode::kArtifact, std::string(d.artifact_type));
      reject();
      continue;
    }
    if (d.platform) {
      PlatformMiss why = PlatformMiss::kNone;
      std::optional<int> rank = rank_of(*d.platform, why);
      if (!rank) {
        if (why == PlatformMiss::kOsVersion) {
          add(ReasonCode::kOsVersionMismatch);
        } else if (why == PlatformMiss::kOsFeatures) {
          add_text(ReasonCode::kOsFeaturesMissing,
                   absl::StrJoin(matcher.MissingOsFeatures(*d.platform), ", "));
        } else {
          add(ReasonCode::kPlatformMismatch);
        }
        reject();
        continue;
      }
      c.platform_rank = *rank;
      c.os_features = static_cast<int>(d.platform->os_features.size());
      add(ReasonCode::kPlatformMatch, *rank);
    } else if (const Platform* from_config = nullptr;
               options.config_platforms != nullptr &&
               (from_config = [&]() -> const Platform* {
                 auto it = options.config_platforms->find(std::string(d.digest));
                 return it == options.config_platforms->end() ? nullptr : &it->second;
               }()) != nullptr) {
      // containerd reads such an entry's image config and runs it when the
      // config's platform matches; it still sorts after entries with one.
      if (!matcher.Rank(*from_config)) {
        add_text(ReasonCode::kConfigPlatformMismatch, FormatPlatform(*from_config));
        reject();
        continue;
      }
      add_text(ReasonCode::kConfigPlatform, FormatPlatform(*from_config));
    } else {
      add(ReasonCode::kNoPlatform);
    }
    if (best && d.platform && !d.platform->features.empty()) {
      // Text is built only on the rare paths (something missing, unknown or
      // passed over); satisfied names are rendered from the entry on demand.
      std::string missing, unknown, ignored;
      FeatureSet need;
      size_t satisfied = 0;
      for (absl::string_view name : d.platform->features) {
        const FeatureMemo m = feature_state(name);
        switch (m.state) {
          case FeatureState::kSatisfied:
            if (m.need) need |= *m.need;  // a name only the host declares has no bit
            ++satisfied;
            break;
          case FeatureState::kUnknownIgnored:
            absl::StrAppend(&ignored, ignored.empty() ? "" : ", ", QuotedName(name));
            break;
          case FeatureState::kUnknown:
            absl::StrAppend(&unknown, unknown.empty() ? "" : ", ", QuotedName(name));
            break;
          case FeatureState::kMissing: {
            // The rare path: spell out which canonical names are missing.
            const FeatureSet lacking = *m.need & ~*host_closure;
            absl::Span<const absl::string_view> canon = CanonicalFeatureViews(name);
            bool named = false;
            for (absl::string_view f : canon) {
              std::optional<size_t> bit = FeatureBit(f);
              if (!bit || !lacking.test(*bit)) continue;
              named = true;
              absl::StrAppend(&missing, missing.empty() ? "" : ", ", f);
              if (canon.size() > 1) absl::StrAppend(&missing, " (from ", name, ")");
            }
            if (!named) {  // only something it implies is missing
              for (absl::string_view f : FeatureNames(lacking)) {
                absl::StrAppend(&missing, missing.empty() ? "" : ", ", f, " (implied by ", name,
                                ")");
              }
            }
            break;
          }
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
      if (satisfied == d.platform->features.size()) {
        add(ReasonCode::kFeaturesSatisfied, 0, kAllWrittenNames);
      } else if (satisfied > 0) {
        std::string written;
        for (absl::string_view name : d.platform->features) {
          if (feature_state(name).state != FeatureState::kSatisfied) continue;
          absl::StrAppend(&written, written.empty() ? "" : ", ", name);
        }
        add_text(ReasonCode::kFeaturesSatisfied, std::move(written));
      }
      if (!ignored.empty()) add_text(ReasonCode::kUnknownIgnored, std::move(ignored));
      need_of[i] = needs.Id(need);
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
          c.score = SaturatingAdd(c.score, v.weight);
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
        c.score = SaturatingAdd(c.score, rule.weight);
        add(ReasonCode::kPrefer, rule.weight, r);
      }
    }
    c.eligible = true;
    c.reasons_end = static_cast<uint32_t>(reasons.size());
  }

  // Windows: among entries of one platform rank, the newer os.version
  // first (containerd's Windows comparer; strings, compared as it does).
  // Each distinct os.version gets its place in that order.
  thread_local std::vector<uint8_t> version_order;
  version_order.assign(out.size(), 0);
  if (decision.windows_host) {
    std::vector<absl::string_view> versions;
    for (const Candidate& c : out) {
      if (c.eligible) versions.push_back(OsVersionOf(decision, c));
    }
    std::sort(versions.begin(), versions.end(), std::greater<>());
    versions.erase(std::unique(versions.begin(), versions.end()), versions.end());
    for (size_t k = 0; k < out.size(); ++k) {
      if (!out[k].eligible) continue;
      auto at = std::lower_bound(versions.begin(), versions.end(), OsVersionOf(decision, out[k]),
                                 std::greater<>());
      // Past 255 distinct versions the rest tie (and keep index order).
      version_order[k] = static_cast<uint8_t>(std::min<size_t>(at - versions.begin(), 0xFF));
    }
  }

  // Specificity: depths among the eligible entries tied on score, platform
  // rank and os.version. Only when some entry needs something. Members are
  // bucketed by tie group (a counting sort: groups are few, and a hash map
  // takes over the lookup when they are not).
  if (needs.size() > 1) {
    using TieKey = std::tuple<int64_t, int, uint8_t>;
    auto tie_key = [&](size_t k) -> TieKey {
      return {out[k].score, EffectiveRank(out[k]), version_order[k]};
    };
    absl::InlinedVector<TieKey, 16> keys;
    absl::flat_hash_map<TieKey, uint32_t> key_index;  // used past 16 groups
    thread_local std::vector<uint32_t> group_of_entry;
    group_of_entry.assign(out.size(), UINT32_MAX);
    for (uint32_t k = 0; k < out.size(); ++k) {
      if (!out[k].eligible) continue;
      const TieKey key = tie_key(k);
      uint32_t g = UINT32_MAX;
      if (key_index.empty()) {
        for (uint32_t i = 0; i < keys.size(); ++i) {
          if (keys[i] == key) g = i;
        }
      } else if (auto it = key_index.find(key); it != key_index.end()) {
        g = it->second;
      }
      if (g == UINT32_MAX) {
        g = static_cast<uint32_t>(keys.size());
        keys.push_back(key);
        if (!key_index.empty() || keys.size() > 16) {
          if (key_index.empty()) {
            for (uint32_t i = 0; i < keys.size(); ++i) key_index.emplace(keys[i], i);
          } else {
            key_index.emplace(key, g);
          }
        }
      }
      group_of_entry[k] = g;
    }
    // Inline for the usual few groups: two heap blocks a call otherwise.
    absl::InlinedVector<uint32_t, 17> start(keys.size() + 1, 0);
    for (uint32_t g : group_of_entry) {
      if (g != UINT32_MAX) ++start[g + 1];
    }
    for (size_t g = 0; g < keys.size(); ++g) start[g + 1] += start[g];
    thread_local std::vector<uint32_t> members, member_ids;
    thread_local std::vector<int> member_depth;
    members.resize(start.back());
    member_ids.resize(start.back());
    member_depth.assign(start.back(), 0);
    absl::InlinedVector<uint32_t, 16> next(start.begin(), start.end() - 1);
    for (uint32_t k = 0; k < out.size(); ++k) {
      if (group_of_entry[k] == UINT32_MAX) continue;
      const uint32_t at = next[group_of_entry[k]]++;
      members[at] = k;
      member_ids[at] = need_of[k];
    }
    for (size_t g = 0; g < keys.size(); ++g) {
      const size_t n = start[g + 1] - start[g];
      if (n < 2) continue;
      AssignDepths(needs, absl::MakeConstSpan(member_ids).subspan(start[g], n),
                   absl::MakeSpan(member_depth).subspan(start[g], n));
    }
    for (size_t at = 0; at < members.size(); ++at) out[members[at]].specificity = member_depth[at];
  }

  // Eligible best first (through a packed key: score desc, platform rank
  // asc, os.version desc, specificity desc, os.features desc, position asc);
  // rejected after, in index order.
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
  auto group_key = [&](size_t k) {
    const Candidate& c = out[k];
    uint64_t rank = static_cast<uint64_t>(std::min(EffectiveRank(c), 0xFFFF));
    uint64_t version = version_order[k];
    uint64_t specificity = 0xFFF - static_cast<uint64_t>(std::min(c.specificity, 0xFFF));
    uint64_t os_features = 0xFFF - static_cast<uint64_t>(std::min(c.os_features, 0xFFF));
    return Key{c.score, rank << 48 | version << 40 | specificity << 28 | os_features << 16};
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
    const Key key = group_key(k);
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
      Key key = group_key(k);
      key.rest |= static_cast<uint64_t>(std::min<size_t>(out[k].position, 0xFFFF));
      keyed.emplace_back(key, k);
    }
    std::sort(keyed.begin(), keyed.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [key, k] : keyed) order.push_back(k);
  }
  // Whether each loser on specificity needs a strict subset of the winner.
  if (needs.size() > 1 && !order.empty()) {
    const FeatureSet& top = needs[need_of[order.front()]];
    for (uint32_t k : order) {
      const FeatureSet& mine = needs[need_of[k]];
      out[k].need_within_winner = mine != top && (mine & ~top).none();
    }
  }
  // Reordered through a copy the thread keeps, so that the answer's vector
  // is the one already allocated (a fresh one would be a heap block more).
  thread_local std::vector<Candidate> unordered;
  unordered.assign(out.begin(), out.end());
  size_t at = 0;
  for (uint32_t k : order) out[at++] = unordered[k];
  for (const Candidate& c : unordered) {
    if (!c.eligible) out[at++] = c;
  }
  // A large index's copy is not kept for the thread's life.
  if (unordered.capacity() > kMaxKeptCandidates) std::vector<Candidate>().swap(unordered);
#ifndef NDEBUG
  // Eligible entries first, in score then platform order; the winner is
  // the first of them.
  IMGSEL_DCHECK(order.size() == eligible);
  for (size_t k = 1; k < out.size(); ++k) {
    const Candidate& a = out[k - 1];
    const Candidate& b = out[k];
    IMGSEL_DCHECK(a.eligible || !b.eligible);
    if (!a.eligible || !b.eligible) continue;
    IMGSEL_DCHECK(a.score >= b.score);
    IMGSEL_DCHECK(a.score != b.score || EffectiveRank(a) <= EffectiveRank(b));
  }
#endif
  return decision;
}

PreparedHost::PreparedHost(const HostProfile& host)
    : host_(host),
      best_(host.platform),
      first_match_(ContainerdDefaultHost(host.platform)),
      best_platform_(FormatPlatform(best_.host())),
      first_match_platform_(FormatPlatform(first_match_.host())),
      closure_(ComputeFeatureClosure(host)) {}

std::vector<size_t> EligibleEntries(const ParsedIndex& index, const HostProfile& host,
                                    const Policy& policy, const SelectOptions& options) {
  std::vector<size_t> eligible;
  if (index.kind == DocumentKind::kManifest) return eligible;
  const bool best = options.kind == PolicyKind::kBest;
  const PlatformMatcher& matcher =
      best ? MatcherFor(host.platform, options.kind)
           : MatcherFor(ContainerdDefaultHost(host.platform), options.kind);
  const FeatureSet* host_closure = nullptr;  // built on the first entry with features
  // Steps 1-5 of select.h, in Select's order, each answered yes or no.
  auto features_fit = [&](const PlatformView& p) {
    for (absl::string_view name : p.features) {
      const FeatureSet* need = FeatureNeed(name);
      if (need == nullptr) {
        // A name only the operator declared for this host is still known.
        const bool known = IsWellFormedFeatureName(name) &&
                           host.features.find(absl::AsciiStrToLower(name)) != host.features.end();
        if (!known && policy.unknown_features == UnknownFeatures::kReject) return false;
        continue;
      }
      if (host_closure == nullptr) host_closure = &HostFeatureClosure(host);
      if ((*need & ~*host_closure).any()) return false;
    }
    return true;
  };
  for (size_t i = 0; i < index.manifests.size(); ++i) {
    const Descriptor& d = index.manifests[i];
    if (!d.invalid_reason.empty() || IsIndex(d.media_type) || !IsImageManifest(d.media_type) ||
        !d.artifact_type.empty()) {
      continue;
    }
    if (d.platform) {
      if (!matcher.Rank(*d.platform)) continue;
    } else if (options.config_platforms != nullptr) {
      auto it = options.config_platforms->find(std::string(d.digest));
      if (it != options.config_platforms->end() && !matcher.Rank(it->second)) continue;
    }
    if (best && d.platform && !features_fit(*d.platform)) continue;
    if (best && options.compat != nullptr) {
      auto it = options.compat->find(std::string(d.digest));
      if (it != options.compat->end() && !it->second.passed) continue;
    }
    eligible.push_back(i);
  }
  return eligible;
}

}  // namespace imgsel
