// Referrers: the artifacts whose `subject` is a given manifest or index.
//
//   GET /v2/<name>/referrers/<digest>[?artifactType=<type>]
//       200 + an OCI index of artifact descriptors   the API works; the
//             index is filtered here unless OCI-Filters-Applied names
//             artifactType; pages are followed through Link rel="next",
//             which must name this same listing (/v2/<name>/referrers/
//             <digest>, any query) on the host that answered: any other
//             target is refused
//       404, or an answer that is not an index       no referrers API: use
//   GET /v2/<name>/manifests/sha256-<hex>            the tag schema (an index
//             maintained by pushers such as `oras attach`); 404 there means
//             no artifacts
//
// Which way a repository works is remembered (in the client) per registry
// and repository, for referrers_ttl. Lists are cached (DiskCache records
// keyed by registry, repository, subject and types, for referrers_ttl),
// empty ones too, so a warm lookup costs no request; a list is cached only
// when it is no larger than a read of the cache accepts (max_listing_bytes).
// Several subjects (an index and its entries) are looked up in parallel, up
// to kMaxParallelSubjects (64) at a time, all at once even on a repository
// not yet known; there each subject asks the API and the tag schema at once,
// so finding out which way the repository works costs no round trip (only,
// on a registry with the API, one unused tag GET per subject, once per
// referrers_ttl).
//
// Caps. A registry named in a pod spec may be an attacker's, so what one
// lookup may cost is bounded, and work stops with ResourceExhausted naming
// the cap as soon as one is spent. A ReferrersClient is one selection's
// worth of lookups: the per-selection caps count everything it lists and
// fetches (cache hits too: they are memory all the same). Defaults:
//
//   cap                               default   per
//   listing pages                     16        subject
//   listing bytes (all pages)         4 MiB     subject (= the cache record cap)
//   listing descriptors (all pages)   4096      subject
//   listing pages                     256       selection
//   listing bytes                     16 MiB    selection
//   listing descriptors               16384     selection
//   layers kept                       16        artifact
//   bytes (manifest + layers kept)    64 MiB    artifact
//   layers kept                       64        selection
//   bytes (manifests + layers kept)   64 MiB    selection
//
// A single layer is also capped by ClientOptions::max_blob_bytes, and each
// fetch asks for no more than the tightest cap still has room for.
//
// Artifacts imgsel understands (it returns bytes; the rule engine parses):
//   artifactType                                        layer media type
//   application/vnd.nfd.image-compatibility.v1alpha1
//   application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml
//   application/vnd.oci.image-compatibility.v1
//   application/vnd.oci.image-compatibility.nfd.v1alpha1+json
//   application/vnd.oci.image-compatibility.v1 application/vnd.oci.image-compatibility.spec.v1+json
//
// FetchArtifact returns an artifact manifest's layers of the wanted media
// types, each verified against its digest and capped (max_blob_bytes and the
// caps above).
//
// Thread-safe (as the RegistryClient it uses); the threads of one selection
// share one ReferrersClient and so its budget.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "oci/media_types.h"
#include "registry/client.h"

namespace imgsel::registry {

// Subjects List looks up at once, each on a thread of its own (and, on a
// repository whose referrers mode is not known yet, with a second thread
// asking the tag schema beside it). The listing is one round trip for an
// index of up to 63 eligible entries, which is what the round-trip target
// asks (docs/BENCHMARKS.md, "Artifact round trips"); the price is up to 64
// threads (128 on a repository not yet known) for the time of that round,
// per selection. More subjects take a round more per 64. The requests
// themselves are bounded apart, by the registry's request slots
// (ClientOptions::max_concurrent_per_registry).
inline constexpr size_t kMaxParallelSubjects = 64;

// Referrers of one subject: a page of a real registry holds tens to hundreds
// of descriptors (~300 bytes each); 16 pages of 4 MiB would be 64 MiB kept
// in memory and a cache record no read accepts.
inline constexpr int kMaxListingPages = 16;
// Also the size of a cached listing, written and read: 4 MiB, the manifest
// cap, so one page at its largest fits.
inline constexpr size_t kMaxListingBytes = size_t{4} << 20;
inline constexpr size_t kMaxListingEntries = 4096;
// One selection lists the index and each candidate that can win: a few
// subjects, rarely more than 16, but up to kMaxParallelSubjects at once,
// each asking the API and the tag schema on a repository not yet known (a
// page each, found or not): 128 pages for 64 subjects, twice that leaves
// room for their base images. (At 64, an index of 32 entries listed at once
// on a cold repository spent the cap.) A page costs a request; the bytes
// and descriptor caps below bound what is kept.
inline constexpr int kMaxSelectionListingPages = 256;
inline constexpr size_t kMaxSelectionListingBytes = size_t{16} << 20;
inline constexpr size_t kMaxSelectionListingEntries = 16384;
// A compatibility artifact holds one spec layer, or one per profile: 16 is
// generous. 64 MiB is the largest [compat] max_layer_bytes, so one layer at
// that limit still fits; a manifest listing one layer a thousand times
// (1 GiB kept) stops at the 17th.
inline constexpr int kMaxArtifactLayers = 16;
inline constexpr size_t kMaxArtifactBytes = size_t{64} << 20;
// A selection reads the manifest of every artifact listed and fetches the
// layers of the newest of each kind per subject; the bytes cap is what one
// selection may hold at once.
inline constexpr int kMaxSelectionLayers = 64;
inline constexpr size_t kMaxSelectionArtifactBytes = size_t{64} << 20;

// The caps one ReferrersClient applies: the constants above unless a test
// (or a tool) lowers them.
struct ReferrersLimits {
  int max_listing_pages = kMaxListingPages;         // per subject
  size_t max_listing_bytes = kMaxListingBytes;      // per subject; the cache record cap
  size_t max_listing_entries = kMaxListingEntries;  // per subject
  int max_selection_listing_pages = kMaxSelectionListingPages;
  size_t max_selection_listing_bytes = kMaxSelectionListingBytes;
  size_t max_selection_listing_entries = kMaxSelectionListingEntries;
  int max_artifact_layers = kMaxArtifactLayers;
  size_t max_artifact_bytes = kMaxArtifactBytes;  // manifest + layers kept
  int max_selection_layers = kMaxSelectionLayers;
  size_t max_selection_artifact_bytes = kMaxSelectionArtifactBytes;
};

// Annotations as key/value pairs sorted by key.
using Annotations = std::vector<std::pair<std::string, std::string>>;

struct ArtifactDescriptor {
  std::string media_type;  // of the artifact manifest
  std::string digest;
  int64_t size = 0;
  std::string artifact_type;
  Annotations annotations;  // sorted by key
};

struct SubjectReferrers {
  std::string subject;                        // the digest asked about
  absl::Status status;                        // OK, or why this subject's lookup failed
  std::vector<ArtifactDescriptor> artifacts;  // filtered to the asked types
  bool from_cache = false;
  bool via_tag_schema = false;
};

struct ArtifactLayer {
  std::string media_type;
  std::string digest;
  Annotations annotations;  // e.g. "name" for one profile per layer
  std::string bytes;        // verified
};

// A layer as an artifact manifest lists it, not fetched.
struct ArtifactLayerDescriptor {
  std::string media_type;
  std::string digest;           // as written; checked when the layer is fetched
  std::optional<int64_t> size;  // as declared; nullopt: not given
  Annotations annotations;
};

// An artifact manifest, read, its layers not fetched: enough to tell what
// kind of artifact it is (matcher's ArtifactKind) before any layer is.
struct ArtifactManifest {
  std::string digest;
  std::string artifact_type;  // artifactType, else the config's media type
  std::string subject;        // the subject's digest, if any
  Annotations annotations;
  std::vector<ArtifactLayerDescriptor> layers;  // every layer, in manifest order
  size_t manifest_bytes = 0;                    // counted against the artifact's cap
};

struct Artifact {
  std::string digest;
  std::string artifact_type;  // artifactType, else the config's media type
  std::string subject;        // the subject's digest, if any
  Annotations annotations;
  std::vector<ArtifactLayer> layers;  // only the asked media types, in manifest order
};

class ReferrersClient {
 public:
  // One selection's lookups: every request ends by `deadline`, and all of
  // them together stay within `limits`.
  explicit ReferrersClient(RegistryClient* client, absl::Time deadline = absl::InfiniteFuture(),
                           ReferrersLimits limits = {})
      : client_(client), deadline_(deadline), limits_(limits) {}
  ReferrersClient(const ReferrersClient&) = delete;
  ReferrersClient& operator=(const ReferrersClient&) = delete;

  // One entry per subject, in the order given. `artifact_types` empty: all.
  // A failure is per subject (its status); a subject without artifacts has
  // an OK status and an empty list.
  std::vector<SubjectReferrers> List(const Reference& repo,
                                     const std::vector<std::string>& subjects,
                                     const std::vector<std::string>& artifact_types,
                                     const Credentials* creds = nullptr);

  // The artifact manifest named by `artifact` and its layers whose media type
  // is in `layer_media_types` (empty: all). Errors name the artifact and the
  // layer: NotFound (missing blob), DataLoss (digest mismatch),
  // ResourceExhausted (over a cap, named), InvalidArgument (not a manifest).
  absl::StatusOr<Artifact> FetchArtifact(const Reference& repo, const ArtifactDescriptor& artifact,
                                         const std::vector<std::string>& layer_media_types,
                                         const Credentials* creds = nullptr);

  // FetchArtifact in two steps: the manifest alone (by digest, so from the
  // client's cache when it has it), then the layers of the wanted media
  // types, with the same errors and caps (the manifest's bytes count
  // towards its artifact's cap).
  absl::StatusOr<ArtifactManifest> FetchArtifactManifest(const Reference& repo,
                                                         const ArtifactDescriptor& artifact,
                                                         const Credentials* creds = nullptr);
  absl::StatusOr<Artifact> FetchArtifactLayers(const Reference& repo,
                                               const ArtifactManifest& manifest,
                                               const std::vector<std::string>& layer_media_types,
                                               const Credentials* creds = nullptr);

 private:
  // What one subject's listing has used so far.
  struct ListingUse {
    int pages = 0;
    size_t bytes = 0;
    size_t entries = 0;
  };
  SubjectReferrers ListOne(const Reference& repo, const std::string& subject,
                           const std::vector<std::string>& artifact_types,
                           const Credentials* creds);
  absl::StatusOr<std::vector<ArtifactDescriptor>> ViaApi(const Reference& repo,
                                                         const std::string& subject,
                                                         const std::vector<std::string>& types,
                                                         const Credentials* creds, ListingUse& use,
                                                         bool& supported);
  absl::StatusOr<std::vector<ArtifactDescriptor>> ViaTagSchema(
      const Reference& repo, const std::string& subject, const std::vector<std::string>& types,
      const Credentials* creds, ListingUse& use);
  // The most bytes the next fetch may return, and the cap that sets it.
  struct Room {
    size_t bytes;
    std::string cap;  // "the per-artifact cap of 67108864 bytes", ...
  };
  // A page is about to be fetched: one more page, and the most bytes it may
  // have (per subject and per selection); ResourceExhausted naming the cap.
  absl::StatusOr<Room> StartPage(ListingUse& use, absl::string_view what);
  // A page (or a cached listing) arrived: its bytes and descriptors counted.
  absl::Status CountPage(ListingUse& use, size_t bytes, size_t entries, absl::string_view what);
  // Room for the next artifact fetch given what the artifact has used;
  // ResourceExhausted when none.
  absl::StatusOr<Room> ArtifactRoom(size_t artifact_bytes, absl::string_view what);
  absl::Status CountArtifactBytes(size_t& artifact_bytes, size_t bytes, absl::string_view what);
  absl::Status TakeLayer(int& artifact_layers, absl::string_view what);

  RegistryClient* client_;
  const absl::Time deadline_;
  const ReferrersLimits limits_;
  absl::Mutex mu_;
  int selection_pages_ ABSL_GUARDED_BY(mu_) = 0;
  size_t selection_listing_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t selection_entries_ ABSL_GUARDED_BY(mu_) = 0;
  int selection_layers_ ABSL_GUARDED_BY(mu_) = 0;
  size_t selection_artifact_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

// The descriptors of a referrers index: a referrers API page, the tag
// schema's index or a cached listing. InvalidArgument naming `source` when
// the text is not JSON or not an OCI index; ResourceExhausted when it is
// longer than `max_bytes`. `admit` is asked, before any descriptor is kept,
// whether that many fit (the caps); its error is returned. A descriptor
// with a bad digest or size, or that is not an object, is skipped.
// Pure function of its input.
absl::StatusOr<std::vector<ArtifactDescriptor>> ParseReferrersIndex(
    absl::string_view json, absl::string_view source, size_t max_bytes,
    const std::function<absl::Status(size_t descriptors)>& admit);

// The tag the fallback schema uses for a subject: "sha256-<hex>".
std::string ReferrersTag(absl::string_view digest);

// Indexes of the newest artifact of each kind in `manifests`, by matcher's
// one rule (compat_eval.h: ArtifactKind, NewestOfEachKind): the kind is the
// artifactType and the layer media types imgsel reads, so it needs the
// manifest, not only the listing; an artifact with no layer imgsel reads is
// never chosen. In the order the kinds first appear.
std::vector<size_t> NewestOfEachReadableKind(const std::vector<ArtifactManifest>& manifests);

// The referrers index text for descriptors (what the cache stores and what
// the tag schema holds).
std::string ReferrersIndexJson(const std::vector<ArtifactDescriptor>& artifacts);

}  // namespace imgsel::registry
