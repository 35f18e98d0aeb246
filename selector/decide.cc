#include "selector/decide.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace imgsel {

std::shared_ptr<const ArtifactResult> EvaluationMemo::Evaluate(const CompatArtifact& artifact,
                                                               bool on_index,
                                                               const GroupPolicy& groups,
                                                               absl::string_view from_base) {
  std::string key = absl::StrCat(artifact.id, on_index ? "#index#" : "#entry#", from_base, "#",
                                 groups.Describe(), "#", absl::StrJoin(groups.nfd_groups, ","));
  {
    absl::MutexLock lock(&mu_);
    if (auto it = results_.find(key); it != results_.end()) return it->second;
  }
  ArtifactResult evaluated = EvaluateArtifact(artifact, on_index, host_, groups);
  evaluated.from_base = std::string(from_base);
  auto result = std::make_shared<const ArtifactResult>(std::move(evaluated));
  absl::MutexLock lock(&mu_);
  if (results_.size() >= kMaxEntries) results_.clear();
  results_[std::move(key)] = result;
  return result;
}

Selection DecideSelection(const FetchedImage& image, const HostProfile& host, const Policy& policy,
                          PolicyKind kind, EvaluationMemo* memo) {
  Selection sel;
  sel.reference = image.reference;
  sel.repository = image.repository;
  sel.tag = image.tag;
  sel.document_digest = image.document_digest;
  sel.document_media_type = image.document_media_type;
  sel.warnings = image.warnings;
  sel.memory_share = image.memory_share;
  sel.is_index = image.index.kind != DocumentKind::kManifest;
  SelectOptions options;
  options.kind = kind;
  const bool kept = memo != nullptr && &memo->host() == &host;
  if (kept) options.prepared_host = &memo->prepared();
  if (!image.config_platforms.empty()) options.config_platforms = &image.config_platforms;

  if (!image.artifact_failure.empty()) {
    // [compat] on_error = "fallback": containerd's own choice, flagged.
    options.kind = PolicyKind::kFirstMatch;
    sel.decision = Select(image.index, host, policy, options);
    sel.decision.fallback = true;
    sel.decision.fallback_reason =
        absl::StrCat("compatibility artifacts: ", image.artifact_failure);
    return sel;
  }
  std::map<std::string, CompatVerdict> verdicts;
  if (sel.is_index && image.artifacts_looked_up && kind == PolicyKind::kBest &&
      !image.artifacts.empty()) {
    static const GroupPolicy* const kDefaultGroups = new GroupPolicy();
    const GroupPolicy& groups = image.groups ? *image.groups : *kDefaultGroups;
    auto evaluate = [&](const CompatArtifact& artifact, bool on_index,
                        absl::string_view from_base = "") {
      if (kept) return memo->Evaluate(artifact, on_index, groups, from_base);
      ArtifactResult evaluated = EvaluateArtifact(artifact, on_index, host, groups);
      evaluated.from_base = std::string(from_base);
      return std::make_shared<const ArtifactResult>(std::move(evaluated));
    };
    // Each artifact evaluated once: the index's apply to every entry.
    std::vector<std::shared_ptr<const ArtifactResult>> index_results;
    if (auto it = image.artifacts.find(image.document_digest); it != image.artifacts.end()) {
      for (const auto& artifact : it->second) index_results.push_back(evaluate(*artifact, true));
    }
    for (size_t position : EligibleEntries(image.index, host, policy, options)) {
      std::string digest(image.index.manifests[position].digest);
      std::vector<std::shared_ptr<const ArtifactResult>> all = index_results;
      if (auto it = image.artifacts.find(digest);
          it != image.artifacts.end() && digest != image.document_digest) {
        for (const auto& artifact : it->second) all.push_back(evaluate(*artifact, false));
      }
      // Its base images' artifacts: requirements of the entry as well.
      if (auto bases = image.bases.find(digest); bases != image.bases.end()) {
        for (const FetchedImage::BaseSubject& base : bases->second) {
          auto it = image.artifacts.find(base.key);
          if (it == image.artifacts.end()) continue;
          for (const auto& artifact : it->second) {
            all.push_back(evaluate(*artifact, false, base.base));
          }
        }
      }
      if (all.empty()) continue;
      std::vector<const ArtifactResult*> raw;
      raw.reserve(all.size());
      for (const auto& r : all) raw.push_back(r.get());
      verdicts[digest] = CombineArtifactResults(raw);
      sel.compat[digest] = std::move(all);
    }
    if (!verdicts.empty()) options.compat = &verdicts;
  }
  sel.decision = Select(image.index, host, policy, options);
  return sel;
}

}  // namespace imgsel
