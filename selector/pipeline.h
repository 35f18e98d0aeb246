// SelectionPipeline: the one path from a source - an image reference, an
// OCI image layout on disk, or index bytes - and a host to a Decision,
// shared by `imgsel select`, `imgsel matrix`, the Selector API and the CRI
// proxy. Nothing else resolves references, reads layouts, parses indexes
// for a decision, fetches artifacts or applies the fallback rules.
//
// A selection is two halves:
//
//   fetch (Fetch; all the I/O, bounded by the request's budget)
//     1. resolve the reference at its registry (hosts.toml, credentials), or
//        read the layout's document (checked against its digest), or take
//        the caller's bytes
//     2. parse it (bounded); a plain manifest: nothing to choose
//     3. entries without a platform: read their image configs
//     4. an index from a registry: list compatibility artifacts for the
//        index digest and every entry that could win on any of the hosts
//        asked for (EligibleEntries, select.h), in parallel; read the
//        manifest of every artifact listed (in parallel, kept for good by
//        digest), which says its kind (matcher ArtifactKind: artifactType
//        and the layer media types imgsel reads); fetch and parse the
//        layers of the newest of each kind per subject (parsed artifacts
//        kept by digest). Artifacts with nothing imgsel reads are listed as
//        not read and change nothing. The entries' manifests are read
//        alongside the listing; the base images they name
//        (base_images.h) are read and their referrers listed a level a
//        round trip, and the base's artifacts apply to the entry.
//   decide (DecideSelection, decide.h; pure)
//     5. evaluate those artifacts against one host, select once with the
//        policy of the runtime handler
//
// Select is fetch then decide for the request's host; with
// fetch_chosen_content it then fetches the winner's manifest and config
// when they did not travel with the referrers (below). `imgsel matrix`
// fetches each image once and decides once per host profile.
//
// The host is a per-request input (SelectionRequest::host), the pipeline's
// own by default. matcher::Select runs once per decision; the one
// exception is a cold selection with fetch_chosen_content, which ranks the
// index once without artifacts to guess which manifest to fetch alongside
// the referrers.
//
// Round trips. A cold selection of an index from a registry costs the GET
// of the tag, then the referrers of every subject at once (one round trip:
// on a repository not yet known the API and the sha256-<hex> tag are asked
// together; the eligible entries' manifests are read in the same trip),
// then one round trip per level of base images (their documents read and
// their referrers listed at once; none when no entry names a base), then
// the manifests of the artifacts not yet in memory, at
// once, then the layers of the newest of each kind, at once; with
// fetch_chosen_content the likely choice's manifest and config are fetched
// alongside the referrers, not after. An index with entries without a
// platform adds the reads of their manifests and configs before that. A
// warm selection (every referrers list and artifact in memory) decides at
// once and then, with fetch_chosen_content, fetches the winner's manifest
// and config: the two round trips containerd would make.
//
// Memory in front of the disk cache: referrers lists for referrers_ttl,
// parsed artifacts by digest, and each artifact's evaluation against the
// pipeline's own host (an artifact is content-addressed and that host is
// fixed for the pipeline's life; another host's evaluations are not kept),
// so a warm selection starts no thread and reads no file.
//
// Failure rules (DESIGN.md "Failure model"):
//   - the source cannot be resolved, read or parsed: an error (the CRI
//     proxy then forwards the original request; the API reports fallback);
//   - what imgsel reads (a listing, an artifact manifest, a layer of a
//     media type it reads, its parse) cannot be had: [compat] on_error =
//     "fallback" gives a first-match decision flagged fallback with the
//     reason; "ignore" drops artifacts for the entries concerned;
//   - every failure says its stage (selection_stage.h: request, resolve,
//     index, budget, memory) as a payload on the status;
//   - the request's budget runs out: DeadlineExceeded ("selection budget of
//     … ran out while …"). The budget is the deadline of every registry
//     request (min(request_timeout, what is left), all redirect hops and
//     token fetches included), of every wait for a registry slot or for the
//     memory budget, and of the parallel fetches Select joins, so no
//     registry wait outlives it and no work is left running when Select
//     returns. It is checked between steps, not during them: CPU work
//     already started (parsing a large index or a costly spec, evaluating
//     rules) finishes first, and a layout on disk is read whatever is
//     left.
//
// Thread-safe: Select and Fetch may be called from many threads; Reload
// swaps the config atomically (calls in flight keep the one they started
// with).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "config/config.h"
#include "matcher/compat_eval.h"
#include "matcher/host_profile.h"
#include "matcher/select.h"
#include "oci/clock.h"
#include "registry/auth.h"
#include "registry/reference.h"
#include "selector/decide.h"
#include "selector/image_content.h"
#include "selector/memory_gate.h"
#include "selector/oci_layout.h"

namespace imgsel {

namespace registry {
class RegistryClient;
class DiskCache;
}  // namespace registry

struct SelectionRequest {
  // A registry reference ("nginx", "host:5000/app:v1", "repo@sha256:...").
  std::string reference;
  // The same reference already parsed by the caller (the CRI and API paths
  // parse it to check it): used as given, not parsed again.
  std::optional<registry::Reference> parsed_reference;
  // Or an image layout on disk (`imgsel select|matrix oci-layout:...`;
  // reference then names it). Never set from a remote caller's input.
  std::optional<OciLayoutRef> layout;
  // Or the index itself (reference then only names it in messages): the
  // caller's bytes, read in place, which must outlive the Select call.
  absl::string_view index_bytes;
  // The host to decide for; null: the pipeline's own. Must outlive the call.
  const HostProfile* host = nullptr;
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

// The fetch half for a source that needs no registry: request.layout, or
// else request.index_bytes (empty bytes are an empty document). What
// SelectionPipeline::Fetch does for them, without a pipeline: no registry
// client, no disk cache, no budget (a layout is read whole, bounded in
// size). Thread-safe.
absl::StatusOr<FetchedImage> FetchLocalImage(const SelectionRequest& request);

class SelectionPipeline {
 public:
  // `host` is probed once by the caller. Creates the registry client and the
  // disk cache from the config. `clock` ages what the pipeline, the client
  // and the cache remember (oci/clock.h); not owned, outlives the pipeline.
  // A cache directory that cannot be set up is not an error: the pipeline
  // runs without a disk cache and cache_warning() says why.
  static absl::StatusOr<std::unique_ptr<SelectionPipeline>> Create(
      Config config, HostProfile host, const Clock* clock = &Clock::Real());
  ~SelectionPipeline();

  // Fetch, then DecideSelection for request.host (or the pipeline's host),
  // then the winner's content when asked for and not fetched ahead.
  absl::StatusOr<Selection> Select(const SelectionRequest& request) const;

  // The fetch half alone, for decisions on several hosts: the artifacts of
  // every entry that could win on any of `hosts` (empty: the request's
  // host) are fetched. request.fetch_chosen_content guesses the winner for
  // the first host. Decide with DecideSelection and config()->PolicyFor.
  absl::StatusOr<FetchedImage> Fetch(const SelectionRequest& request,
                                     absl::Span<const HostProfile* const> hosts = {}) const;

  // Replaces the config (weights, handlers, [features], [compat] enabled and
  // on_error). The registry client, its disk cache and the referrers TTL
  // (config/restart_settings.h) stay as Create set them.
  void Reload(Config config);

  const HostProfile& host() const { return host_; }
  std::shared_ptr<const Config> config() const;
  registry::RegistryClient* client() const { return client_.get(); }
  // Why [compat] cache_dir is not in use although configured; empty when
  // it is (or when none is configured).
  const std::string& cache_warning() const { return cache_warning_; }

 private:
  SelectionPipeline(std::shared_ptr<const Config> config, HostProfile host);

  absl::StatusOr<FetchedImage> FetchWith(const SelectionRequest& request,
                                         absl::Span<const HostProfile* const> hosts,
                                         const Config& config) const;

  struct Memo;  // in-memory referrers lists and parsed artifacts

  mutable absl::Mutex mu_;
  std::shared_ptr<const Config> config_ ABSL_GUARDED_BY(mu_);
  HostProfile host_;
  std::unique_ptr<registry::DiskCache> cache_;
  std::string cache_warning_;
  std::unique_ptr<registry::RegistryClient> client_;
  std::unique_ptr<Memo> memo_;
  std::unique_ptr<EvaluationMemo> evaluations_;  // against host_ only
  const Clock* clock_ = &Clock::Real();
  // [compat] referrers_ttl at Create, for the in-memory listings as for the
  // client's disk cache: one TTL until restart.
  absl::Duration referrers_ttl_;
};

}  // namespace imgsel
