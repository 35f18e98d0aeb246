// Compatibility artifacts: which of several of a kind is used (the newest),
// one artifact against the host, and the verdict for an index entry from
// the artifacts that apply to it (compat_eval.h).
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "matcher/compat_eval.h"
#include "matcher/compat_labels.h"
#include "oci/created.h"

namespace imgsel {

using compat_internal::BestSetLabel;
using compat_internal::FirstFailure;
using compat_internal::SetLabel;

namespace {

// ", [compat.groups] required: *; ..." when the artifact has Proposal F
// groups: their verdict depends on the operator's policy, so its reason
// says which (the policy is the groups rule's name, compat_eval.cc).
std::string GroupPolicyNote(const ArtifactResult& r) {
  for (const SpecResult& spec : r.specs) {
    for (const SetResult& set : spec.sets) {
      for (const RuleResult& rule : set.rules) {
        absl::string_view name = rule.name;
        if (absl::ConsumePrefix(&name, "groups (") && absl::ConsumeSuffix(&name, ")")) {
          return absl::StrCat(", [compat.groups] ", name);
        }
      }
    }
  }
  return "";
}

}  // namespace

std::string ArtifactKind(absl::string_view artifact_type,
                         absl::Span<const std::string> layer_media_types) {
  std::set<absl::string_view> readable;
  for (const std::string& media_type : layer_media_types) {
    if (SpecFormatForMediaType(media_type)) readable.insert(media_type);
  }
  if (readable.empty()) return "";
  return absl::StrCat(artifact_type, " ", absl::StrJoin(readable, ","));
}

std::vector<std::string> UnreadMediaTypes(absl::Span<const std::string> layer_media_types) {
  std::vector<std::string> unread;
  for (const std::string& media_type : layer_media_types) {
    if (SpecFormatForMediaType(media_type)) continue;
    if (std::find(unread.begin(), unread.end(), media_type) == unread.end()) {
      unread.push_back(media_type);
    }
  }
  return unread;
}

std::vector<size_t> NewestOfEachKind(
    size_t count, absl::FunctionRef<absl::string_view(size_t)> kind_of,
    absl::FunctionRef<std::optional<absl::Time>(size_t)> created_of) {
  std::vector<size_t> chosen;  // one per kind, in first-seen order
  std::vector<std::optional<absl::Time>> times;
  for (size_t i = 0; i < count; ++i) {
    const std::optional<absl::Time> t = created_of(i);
    const absl::string_view kind = kind_of(i);
    if (kind.empty()) continue;  // nothing imgsel reads: not in the running
    size_t k = 0;
    while (k < chosen.size() && kind_of(chosen[k]) != kind) ++k;
    if (k == chosen.size()) {
      chosen.push_back(i);
      times.push_back(t);
    } else if (t && (!times[k] || *t > *times[k])) {
      chosen[k] = i;
      times[k] = t;
    }
  }
  return chosen;
}

std::vector<size_t> NewestArtifacts(absl::Span<const CompatArtifact> artifacts) {
  return NewestOfEachKind(
      artifacts.size(), [&](size_t i) -> absl::string_view { return artifacts[i].kind; },
      [&](size_t i) { return ArtifactCreated(artifacts[i].annotations); });
}

ArtifactResult EvaluateArtifact(const CompatArtifact& a, bool on_index, const HostProfile& host,
                                const GroupPolicy& groups) {
  ArtifactResult r;
  r.id = a.id;
  r.kind = a.kind;
  r.on_index = on_index;
  r.not_read = a.not_read;
  if (a.kind.empty()) return r;  // nothing to evaluate
  for (const CompatSpec& spec : a.specs) {
    SpecResult s = EvaluateCompatSpec(spec, host, groups);
    if (std::optional<int64_t> w = s.best_weight(); w && (!r.weight || *w > *r.weight)) {
      r.weight = w;
    }
    r.specs.push_back(std::move(s));
  }
  r.matched = r.weight.has_value();
  return r;
}

CompatVerdict CombineArtifactResults(absl::Span<const ArtifactResult* const> results) {
  CompatVerdict v;
  v.passed = true;
  v.weight = 0;
  // The best matching weight per image: "" the image's own, else the base.
  std::map<std::string, int64_t> best;
  for (const ArtifactResult* r : results) {
    const std::string where =
        r->from_base.empty()
            ? absl::StrCat("compat: ", r->on_index ? "index" : "entry", " artifact ",
                           r->id.empty() ? "(unnamed)" : r->id)
            : absl::StrCat("compat: artifact ", r->id.empty() ? "(unnamed)" : r->id, " from base ",
                           r->from_base);
    std::string not_read;
    for (const std::string& media_type : r->not_read) {
      absl::StrAppend(&not_read, "; not read: media type ", media_type);
    }
    if (r->kind.empty()) {
      v.reasons.push_back(absl::StrCat(where, ": nothing imgsel reads, ignored", not_read));
      continue;
    }
    std::string head = absl::StrCat(where, " (", r->kind, GroupPolicyNote(*r), "): ");
    if (r->matched) {
      auto [it, first] = best.try_emplace(r->from_base, *r->weight);
      if (!first && *r->weight > it->second) it->second = *r->weight;
      v.reasons.push_back(
          absl::StrCat(head, BestSetLabel(*r), " matched, weight ", *r->weight, not_read));
      continue;
    }
    v.passed = false;
    std::vector<std::string> failures;
    for (const SpecResult& s : r->specs) {
      for (const SetResult& set : s.sets) {
        failures.push_back(absl::StrCat(s.name.empty() ? "" : s.name + " ", SetLabel(set), ": ",
                                        FirstFailure(set)));
      }
    }
    if (failures.empty()) failures.push_back("no spec");
    v.reasons.push_back(
        absl::StrCat(head, "no set matched: ", absl::StrJoin(failures, "; "), not_read));
  }
  // Each weight is within +-1,000,000 (compat_spec.h) and an entry has a
  // few bases at most (the pipeline follows three levels): no overflow.
  if (v.passed) {
    for (const auto& [image, weight] : best) v.weight += weight;
  }
  return v;
}

EntryCompat EvaluateEntryCompat(absl::Span<const CompatArtifact> entry_artifacts,
                                absl::Span<const CompatArtifact> index_artifacts,
                                const HostProfile& host, const GroupPolicy& groups) {
  EntryCompat out;
  for (size_t i : NewestArtifacts(index_artifacts)) {
    out.artifacts.push_back(EvaluateArtifact(index_artifacts[i], true, host, groups));
  }
  for (size_t i : NewestArtifacts(entry_artifacts)) {
    out.artifacts.push_back(EvaluateArtifact(entry_artifacts[i], false, host, groups));
  }
  // Listed so the explanation says what was not read; they change nothing.
  for (const auto& [list, on_index] :
       {std::pair(index_artifacts, true), std::pair(entry_artifacts, false)}) {
    for (const CompatArtifact& a : list) {
      if (a.kind.empty()) out.artifacts.push_back(EvaluateArtifact(a, on_index, host));
    }
  }
  std::vector<const ArtifactResult*> results;
  for (const ArtifactResult& r : out.artifacts) results.push_back(&r);
  out.verdict = CombineArtifactResults(results);
  return out;
}

}  // namespace imgsel
