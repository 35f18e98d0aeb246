// The decide half of a selection: from an image the pipeline fetched, a host
// and the policy of a runtime handler to a Selection. No I/O and no clock:
// the same fetched image, host and policy give the same decision, so one
// fetch serves any number of hosts (`imgsel matrix`).
//
//   1. which entries could win on this host (EligibleEntries, select.h)
//   2. for each, the compatibility artifacts that apply to it (its own, the
//      index's and its base images') evaluated against the host, combined
//      into a verdict
//   3. one matcher::Select with those verdicts; or, when an artifact could
//      not be read and [compat] on_error = "fallback", containerd's first
//      match flagged fallback with the reason
//
// Thread-safe: FetchedImage is read only; an EvaluationMemo locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "matcher/compat_eval.h"
#include "matcher/host_profile.h"
#include "matcher/index.h"
#include "matcher/policy.h"
#include "matcher/select.h"
#include "registry/reference.h"
#include "selector/image_content.h"
#include "selector/memory_gate.h"

namespace imgsel {

// What the fetch half (SelectionPipeline::Fetch) gathered from one source:
// everything a decision reads, for the hosts it was fetched for.
struct FetchedImage {
  std::string reference;            // normalised: "docker.io/library/nginx:latest"
  std::string repository;           // "docker.io/library/nginx"; empty off a registry
  std::string tag;                  // empty when pinned by digest only
  std::string document_digest;      // what the source resolved to
  std::string document_media_type;  // index, manifest list or manifest
  // The registry reference it came from; nullopt for a layout or raw bytes.
  std::optional<registry::Reference> registry_reference;
  // The document, parsed (bounded by ParseLimits); views the fetched bytes.
  ParsedIndex index;
  // Entries without a platform: the platform their image config names.
  std::map<std::string, Platform> config_platforms;

  // Whether compatibility artifacts were looked for ([compat] enabled, the
  // best policy, a registry source). Then, per subject (the index digest or
  // an entry's) listed, the newest artifact of each kind that could be read,
  // in the order they are combined.
  bool artifacts_looked_up = false;
  // The operator's [compat.groups] when the artifacts were fetched: how
  // decide evaluates them; unset, GroupPolicy's defaults. Optional so that
  // an image read without artifacts (most selections) does not build and
  // free the defaults' vectors and strings.
  std::optional<GroupPolicy> groups;
  std::map<std::string, std::vector<std::shared_ptr<const CompatArtifact>>> artifacts;
  // Per entry digest, the subjects of its base images (base_images.h),
  // nearest first: each a key of `artifacts` ("<repository>@<digest>", so
  // never an entry's bare digest) and the base it belongs to, as
  // explanations name it (an index base and its entry share one name).
  struct BaseSubject {
    std::string key;
    std::string base;  // "docker.io/library/debian@sha256:..."
  };
  std::map<std::string, std::vector<BaseSubject>> bases;
  // Non-empty: an artifact or a referrers list could not be read and
  // [compat] on_error = "fallback" (the decision is then a fallback).
  std::string artifact_failure;
  std::vector<std::string> warnings;  // the same, handled by on_error = "ignore"

  // The manifest and config of the entry most likely to win, fetched while
  // the referrers were listed (SelectionRequest::fetch_chosen_content);
  // `fetched_ahead` says whether that was tried at all.
  bool fetched_ahead = false;
  std::vector<VerifiedBlob> content_fetched_ahead;

  // A large index's share of the memory budget (memory_gate.h); null for
  // small indexes and for bytes the caller handed in.
  std::shared_ptr<const MemoryGate::Share> memory_share;
  int64_t round_trips = 0;                       // registry requests the fetch made
  absl::Time deadline = absl::InfiniteFuture();  // the request's, for what follows
};

// Evaluations of compatibility artifacts against one host, kept by artifact
// digest, whether it was attached to the index and the [compat.groups] it
// was evaluated under (a reload may change them): an artifact is
// content-addressed, so its evaluation against the same host holds for
// good. Bounded (cleared past kMaxEntries). Thread-safe.
class EvaluationMemo {
 public:
  static constexpr size_t kMaxEntries = 4096;

  // `host` must outlive the memo and must not change while it lives; only
  // evaluations against it are kept.
  explicit EvaluationMemo(const HostProfile& host) : host_(host), prepared_(host) {}

  const HostProfile& host() const { return host_; }
  // What every selection for host() works out first (select.h), built once.
  const PreparedHost& prepared() const { return prepared_; }
  // The evaluation of `artifact` under `groups` against host(), from
  // memory or made now; `from_base` as ArtifactResult::from_base.
  std::shared_ptr<const ArtifactResult> Evaluate(const CompatArtifact& artifact, bool on_index,
                                                 const GroupPolicy& groups,
                                                 absl::string_view from_base = "");

 private:
  const HostProfile& host_;
  const PreparedHost prepared_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const ArtifactResult>> results_
      ABSL_GUARDED_BY(mu_);
};

// A decision and what it was made from: what Select returns.
struct Selection {
  Decision decision;
  std::string reference;            // normalised: "docker.io/library/nginx:latest"
  std::string repository;           // "docker.io/library/nginx"
  std::string tag;                  // empty when pinned by digest only
  std::string document_digest;      // what the reference resolved to
  std::string document_media_type;  // index, manifest list or manifest
  bool is_index = false;
  // Per entry digest, the compatibility artifacts evaluated for it (the
  // index's, its own, then its base images'), with result trees for display.
  std::map<std::string, std::vector<std::shared_ptr<const ArtifactResult>>> compat;
  std::vector<std::string> warnings;  // artifact problems handled by on_error
  int64_t round_trips = 0;            // registry requests this selection made
  absl::Duration elapsed;
  // A large index's share of the memory budget (memory_gate.h), given back
  // when the last copy of the Selection goes; null for small indexes.
  std::shared_ptr<const MemoryGate::Share> memory_share;

  // With fetch_chosen_content: the chosen manifest then its config, each
  // checked against its digest, as far as they were fetched in time; empty
  // when a cold selection's choice was not the one fetched ahead (artifacts
  // changed it), on a fallback, or when [compat] is off (nothing to fetch
  // them alongside).
  std::vector<VerifiedBlob> chosen_content;

  // The chosen manifest, or nullptr (nothing fits, or not an index).
  const Descriptor* chosen() const { return decision.selected_descriptor(); }
};

// The decision for `host` under `policy` and `kind`, with the compatibility
// results per eligible entry. `memo`, when given and kept for this very
// host (the same object), saves evaluating an artifact twice; any other
// host is evaluated afresh. Fields that depend on I/O after the decision
// (Selection::chosen_content, round_trips, elapsed) are left to the caller.
Selection DecideSelection(const FetchedImage& image, const HostProfile& host, const Policy& policy,
                          PolicyKind kind, EvaluationMemo* memo = nullptr);

}  // namespace imgsel
