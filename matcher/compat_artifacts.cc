// Compatibility artifacts: which of several of a kind is used (the newest),
// one artifact against the host, and the verdict for an index entry from
// the artifacts that apply to it (compat_eval.h).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "matcher/compat_eval.h"
#include "matcher/compat_labels.h"
#include "oci/created.h"

namespace imgsel {

using compat_internal::BestSetLabel;
using compat_internal::FirstFailure;
using compat_internal::SetLabel;

std::vector<size_t> NewestOfEachKind(
    size_t count, absl::FunctionRef<absl::string_view(size_t)> kind_of,
    absl::FunctionRef<std::optional<absl::Time>(size_t)> created_of) {
  std::vector<size_t> chosen;  // one per kind, in first-seen order
  std::vector<std::optional<absl::Time>> times;
  for (size_t i = 0; i < count; ++i) {
    const std::optional<absl::Time> t = created_of(i);
    const absl::string_view kind = kind_of(i);
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

ArtifactResult EvaluateArtifact(const CompatArtifact& a, bool on_index, const HostProfile& host) {
  ArtifactResult r;
  r.id = a.id;
  r.kind = a.kind;
  r.on_index = on_index;
  for (const CompatSpec& spec : a.specs) {
    SpecResult s = EvaluateCompatSpec(spec, host);
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
  std::optional<int64_t> best;
  for (const ArtifactResult* r : results) {
    std::string head = absl::StrCat("compat: ", r->on_index ? "index" : "entry", " artifact ",
                                    r->id.empty() ? "(unnamed)" : r->id, " (", r->kind, "): ");
    if (r->matched) {
      if (!best || *r->weight > *best) best = r->weight;
      v.reasons.push_back(absl::StrCat(head, BestSetLabel(*r), " matched, weight ", *r->weight));
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
    v.reasons.push_back(absl::StrCat(head, "no set matched: ", absl::StrJoin(failures, "; ")));
  }
  if (v.passed && best) v.weight = *best;
  return v;
}

EntryCompat EvaluateEntryCompat(absl::Span<const CompatArtifact> entry_artifacts,
                                absl::Span<const CompatArtifact> index_artifacts,
                                const HostProfile& host) {
  EntryCompat out;
  for (size_t i : NewestArtifacts(index_artifacts)) {
    out.artifacts.push_back(EvaluateArtifact(index_artifacts[i], true, host));
  }
  for (size_t i : NewestArtifacts(entry_artifacts)) {
    out.artifacts.push_back(EvaluateArtifact(entry_artifacts[i], false, host));
  }
  std::vector<const ArtifactResult*> results;
  for (const ArtifactResult& r : out.artifacts) results.push_back(&r);
  out.verdict = CombineArtifactResults(results);
  return out;
}

}  // namespace imgsel
