// SelectionPipeline: the one path from an image reference (or index bytes)
// to a Decision, shared by `imgsel select`, the Selector API and the CRI
// proxy. Nothing else resolves references, fetches artifacts or applies the
// fallback rules.
//
//   1. resolve the reference at its registry (hosts.toml, credentials)
//   2. a plain manifest: nothing to choose (Selection::is_index false)
//   3. an index: parse it (bounded), list compatibility artifacts for the
//      index digest and every candidate that could win, in parallel; read
//      the manifest of every artifact listed (in parallel, kept for good by
//      digest), which says its kind (matcher ArtifactKind: artifactType and
//      the layer media types imgsel reads); fetch and parse the layers of
//      the newest of each kind per subject (cached by digest). Artifacts
//      with nothing imgsel reads are listed as not read and change nothing.
//   4. evaluate the artifacts against the host, select with the policy of the
//      runtime handler
//
// Round trips. A cold selection of an index costs the GET of the tag, then
// the referrers of every subject at once (one round trip, two on a registry
// without the referrers API), then the artifact manifests at once, then
// their layers at once; with fetch_chosen_content the likely choice's
// manifest and config are fetched alongside, not after. A warm selection
// (every referrers list in memory) decides at once and then fetches the
// winner's manifest and config: the two round trips containerd would make.
//
// Memory in front of the disk cache: referrers lists for referrers_ttl, and
// each artifact's evaluation against this host for good (an artifact is
// content-addressed and the host is fixed for the pipeline's life), so a
// warm selection starts no thread and reads no file.
//
// Failure rules (DESIGN.md "Failure model"):
//   - the index cannot be resolved or parsed: an error (the CRI proxy then
//     forwards the original request; the API reports fallback);
//   - what imgsel reads (a listing, an artifact manifest, a layer of a
//     media type it reads, its parse) cannot be had: [compat] on_error =
//     "fallback" gives a
//     first-match decision flagged fallback with the reason; "ignore" drops
//     artifacts for the entries concerned;
//   - every failure says its stage (selection_stage.h: request, resolve,
//     index, budget, memory) as a payload on the status;
//   - the request's budget runs out: DeadlineExceeded ("selection budget of
//     … ran out while …"). The budget is kept, not watched: its end is the
//     deadline of every registry request (min(request_timeout, what is
//     left), all redirect hops and token fetches included), of every wait
//     for a registry slot, and of the parallel fetches Select joins, so
//     Select itself returns by it and leaves no work running.
//
// Thread-safe: Select may be called from many threads; Reload swaps the
// config atomically (calls in flight keep the one they started with).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "config/config.h"
#include "matcher/compat_eval.h"
#include "matcher/host_profile.h"
#include "matcher/select.h"
#include "registry/auth.h"
#include "selector/image_content.h"
#include "selector/memory_gate.h"

namespace imgsel {

namespace registry {
class RegistryClient;
class DiskCache;
}  // namespace registry

struct SelectionRequest {
  // A registry reference ("nginx", "host:5000/app:v1", "repo@sha256:...").
  std::string reference;
  // Or the index itself (reference then only names it in messages): the
  // caller's bytes, read in place, which must outlive the Select call.
  absl::string_view index_bytes;
  std::string runtime_handler;
  PolicyKind policy = PolicyKind::kBest;
  // The pull's own credentials (CRI auth); null: the Docker config.json.
  const registry::Credentials* credentials = nullptr;
  // Time allowed for everything; infinite: none beyond the registry timeouts.
  absl::Duration budget = absl::InfiniteDuration();
  // Also fetch the chosen manifest and its config (image_content.h) while
  // the compatibility artifacts are looked up, for a puller to reuse.
  bool fetch_chosen_content = false;
};

struct Selection {
  Decision decision;
  std::string reference;            // normalised: "docker.io/library/nginx:latest"
  std::string repository;           // "docker.io/library/nginx"
  std::string tag;                  // empty when pinned by digest only
  std::string document_digest;      // what the reference resolved to
  std::string document_media_type;  // index, manifest list or manifest
  bool is_index = false;
  // Per entry digest, the compatibility artifacts evaluated for it (its own
  // and the index's), with result trees for display.
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

class SelectionPipeline {
 public:
  // `host` is probed once by the caller. Creates the registry client and the
  // disk cache from the config.
  static absl::StatusOr<std::unique_ptr<SelectionPipeline>> Create(Config config, HostProfile host);
  ~SelectionPipeline();

  absl::StatusOr<Selection> Select(const SelectionRequest& request) const;

  // Replaces the config (weights, handlers, [features], [compat] enabled and
  // on_error). The registry client, its disk cache and the referrers TTL
  // (config/restart_settings.h) stay as Create set them.
  void Reload(Config config);

  const HostProfile& host() const { return host_; }
  std::shared_ptr<const Config> config() const;
  registry::RegistryClient* client() const { return client_.get(); }

 private:
  SelectionPipeline(std::shared_ptr<const Config> config, HostProfile host);

  struct Memo;  // in-memory referrers lists and evaluated artifacts

  mutable absl::Mutex mu_;
  std::shared_ptr<const Config> config_ ABSL_GUARDED_BY(mu_);
  HostProfile host_;
  std::unique_ptr<registry::DiskCache> cache_;
  std::unique_ptr<registry::RegistryClient> client_;
  std::unique_ptr<Memo> memo_;
  // [compat] referrers_ttl at Create, for the in-memory listings as for the
  // client's disk cache: one TTL until restart.
  absl::Duration referrers_ttl_;
};

}  // namespace imgsel
