#include "matcher/select.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "matcher/features.h"

namespace imgsel {
namespace {

bool IsImageManifest(const std::string& media_type) {
  return media_type == kOciManifestMediaType || media_type == kDockerManifestMediaType;
}

bool IsIndex(const std::string& media_type) {
  return media_type == kOciIndexMediaType || media_type == kDockerListMediaType;
}

// containerd's default host: it never detects an amd64 level and calls every
// arm64 host v8.
Platform ContainerdDefaultHost(Platform p) {
  if (p.architecture == "amd64" || p.architecture == "arm64") p.variant.clear();
  return p;
}

// True when a is ranked before b.
bool Better(const Candidate& a, const Candidate& b) {
  if (a.score != b.score) return a.score > b.score;
  // Platform-less entries carry rank -1 internally mapped to "after all".
  int ra = a.platform_rank < 0 ? INT32_MAX : a.platform_rank;
  int rb = b.platform_rank < 0 ? INT32_MAX : b.platform_rank;
  if (ra != rb) return ra < rb;
  if (a.features_satisfied != b.features_satisfied) {
    return a.features_satisfied > b.features_satisfied;
  }
  if (a.os_features != b.os_features) return a.os_features > b.os_features;
  return a.position < b.position;
}

// Why `loser` is ranked below `winner`: the first ranking key that differs.
std::string LostBecause(const Candidate& loser, const Candidate& winner) {
  std::string prefix = absl::StrCat("ranked below position ", winner.position, ": ");
  if (loser.score != winner.score) {
    return absl::StrCat(prefix, "lower score (", loser.score, " < ", winner.score, ")");
  }
  if (loser.platform_rank != winner.platform_rank) {
    if (loser.platform_rank < 0) return absl::StrCat(prefix, "no platform (ranked last)");
    return absl::StrCat(prefix, "less specific platform (rank ", loser.platform_rank, " > ",
                        winner.platform_rank, ")");
  }
  if (loser.features_satisfied != winner.features_satisfied) {
    return absl::StrCat(prefix, "fewer required features satisfied (", loser.features_satisfied,
                        " < ", winner.features_satisfied, ")");
  }
  if (loser.os_features != winner.os_features) {
    return absl::StrCat(prefix, "fewer os.features (", loser.os_features, " < ", winner.os_features,
                        ")");
  }
  return absl::StrCat(prefix, "tie, later in the index");
}

}  // namespace

bool PreferRule::Matches(const std::string* annotation_value) const {
  if (annotation_value == nullptr) return false;
  if (value) return *annotation_value == *value;
  if (value_regex) return RE2::PartialMatch(*annotation_value, *value_regex);
  return true;
}

const char* PolicyKindName(PolicyKind kind) {
  return kind == PolicyKind::kBest ? "best" : "first-match";
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
  const PlatformMatcher matcher(best ? host.platform : ContainerdDefaultHost(host.platform));
  const std::string host_name = FormatPlatform(matcher.host());

  std::vector<Candidate>& out = decision.candidates;
  out.reserve(decision.index.manifests.size());
  for (size_t i = 0; i < decision.index.manifests.size(); ++i) {
    const Descriptor& d = decision.index.manifests[i];
    Candidate c;
    c.position = i;
    auto reject = [&](std::string why) {
      c.reasons.push_back(std::move(why));
      out.push_back(std::move(c));
    };
    if (!d.invalid_reason.empty()) {
      reject(absl::StrCat("rejected: ", d.invalid_reason));
      continue;
    }
    if (IsIndex(d.media_type)) {
      reject("rejected: a nested index (imgsel selects among manifests only)");
      continue;
    }
    if (!IsImageManifest(d.media_type)) {
      reject(absl::StrCat("rejected: mediaType \"", d.media_type, "\" is not an image manifest"));
      continue;
    }
    if (d.platform) {
      std::optional<int> rank = matcher.Rank(*d.platform);
      if (!rank) {
        reject(absl::StrCat("rejected: platform ", FormatPlatform(NormalizePlatform(*d.platform)),
                            " does not run on host ", host_name));
        continue;
      }
      c.platform_rank = *rank;
      c.os_features = static_cast<int>(d.platform->os_features.size());
      c.reasons.push_back(absl::StrCat("platform ", FormatPlatform(NormalizePlatform(*d.platform)),
                                       " matches host ", host_name, " (rank ", *rank, ")"));
    } else {
      c.reasons.push_back("no platform: accepted, ranked after entries with one");
    }
    if (best && d.platform && !d.platform->features.empty()) {
      std::vector<std::string> missing, unknown;
      int satisfied = 0;
      for (const auto& name : d.platform->features) {
        std::vector<std::string> canon = CanonicalFeatures(name);
        if (canon.empty()) {
          // A name only the operator declared for this host is still known.
          std::string lower = absl::AsciiStrToLower(name);
          if (host.features.contains(lower)) {
            ++satisfied;
          } else if (policy.unknown_features == UnknownFeatures::kReject) {
            unknown.push_back(name);
          }
          continue;
        }
        bool all = true;
        for (const auto& f : canon) {
          if (!host.features.contains(f)) {
            all = false;
            missing.push_back(canon.size() == 1 ? f : absl::StrCat(name, "(", f, ")"));
          }
        }
        if (all) ++satisfied;
      }
      if (!missing.empty()) {
        reject(absl::StrCat("rejected: requires ", absl::StrJoin(missing, ", "),
                            ", which this host lacks"));
        continue;
      }
      if (!unknown.empty()) {
        reject(absl::StrCat("rejected: requires unknown feature ", absl::StrJoin(unknown, ", "),
                            " (set [features] unknown = \"ignore\" to allow)"));
        continue;
      }
      c.features_satisfied = satisfied;
      c.reasons.push_back(absl::StrCat("requires ", satisfied, " feature",
                                       satisfied == 1 ? "" : "s", ", all present"));
    }
    if (best && options.compat) {
      if (auto it = options.compat->find(d.digest); it != options.compat->end()) {
        const CompatVerdict& v = it->second;
        for (const auto& r : v.reasons) c.reasons.push_back(r);
        if (!v.passed) {
          reject("rejected: no compatibility set of its artifacts matches this host");
          continue;
        }
        if (v.weight != 0) {
          c.score += v.weight;
          c.reasons.push_back(absl::StrCat(v.weight > 0 ? "+" : "", v.weight,
                                           " from the matching compatibility set"));
        }
      }
    }
    if (best) {
      for (const PreferRule& rule : policy.prefer) {
        if (!rule.Matches(d.Annotation(rule.annotation))) continue;
        c.score += rule.weight;
        std::string what = rule.annotation;
        if (rule.value) absl::StrAppend(&what, "=", *rule.value);
        if (rule.value_regex) absl::StrAppend(&what, "~", rule.value_regex->pattern());
        c.reasons.push_back(absl::StrCat(rule.weight >= 0 ? "+" : "", rule.weight, " from prefer ",
                                         what, rule.origin.empty() ? "" : " (", rule.origin,
                                         rule.origin.empty() ? "" : ")"));
      }
    }
    c.eligible = true;
    out.push_back(std::move(c));
  }

  // Eligible first, best first; rejected after, in index order.
  auto first_rejected =
      std::stable_partition(out.begin(), out.end(), [](const Candidate& c) { return c.eligible; });
  std::sort(out.begin(), first_rejected, Better);
  if (out.begin() != first_rejected) {
    const Candidate& winner = out.front();
    size_t eligible = first_rejected - out.begin();
    out.front().reasons.push_back(absl::StrCat("selected: best of ", eligible, " eligible entr",
                                               eligible == 1 ? "y" : "ies", " (score ",
                                               winner.score, ")"));
    for (auto it = out.begin() + 1; it != first_rejected; ++it) {
      it->reasons.push_back(LostBecause(*it, out.front()));
    }
  }
  return decision;
}

}  // namespace imgsel
