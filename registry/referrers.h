// Referrers: the artifacts whose `subject` is a given manifest or index.
//
//   GET /v2/<name>/referrers/<digest>[?artifactType=<type>]
//       200 + an OCI index of artifact descriptors   the API works; the
//             index is filtered here unless OCI-Filters-Applied names
//             artifactType; pages are followed through Link rel="next"
//       404, or an answer that is not an index       no referrers API: use
//   GET /v2/<name>/manifests/sha256-<hex>            the tag schema (an index
//             maintained by pushers such as `oras attach`); 404 there means
//             no artifacts
//
// Which way a repository works is remembered (in the client) per registry
// and repository, for referrers_ttl. Lists are cached (DiskCache records
// keyed by registry, repository, subject and types, for referrers_ttl),
// empty ones too, so a warm lookup costs no request. Several subjects (an
// index and its entries) are looked up in parallel.
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
// types, each verified against its digest and capped (max_blob_bytes).
//
// Thread-safe (as the RegistryClient it uses).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "registry/client.h"

namespace imgsel::registry {

inline constexpr absl::string_view kNfdArtifactType =
    "application/vnd.nfd.image-compatibility.v1alpha1";
inline constexpr absl::string_view kNfdSpecLayerType =
    "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml";
inline constexpr absl::string_view kOciCompatArtifactType =
    "application/vnd.oci.image-compatibility.v1";
inline constexpr absl::string_view kOciCompatNfdLayerType =
    "application/vnd.oci.image-compatibility.nfd.v1alpha1+json";
inline constexpr absl::string_view kOciCompatSpecLayerType =
    "application/vnd.oci.image-compatibility.spec.v1+json";
inline constexpr absl::string_view kEmptyConfigMediaType = "application/vnd.oci.empty.v1+json";

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

struct Artifact {
  std::string digest;
  std::string artifact_type;  // artifactType, else the config's media type
  std::string subject;        // the subject's digest, if any
  Annotations annotations;
  std::vector<ArtifactLayer> layers;  // only the asked media types, in manifest order
};

class ReferrersClient {
 public:
  // One selection's lookups: every request ends by `deadline`.
  explicit ReferrersClient(RegistryClient* client, absl::Time deadline = absl::InfiniteFuture())
      : client_(client), deadline_(deadline) {}

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
  // ResourceExhausted (over the cap), InvalidArgument (not a manifest).
  absl::StatusOr<Artifact> FetchArtifact(const Reference& repo, const ArtifactDescriptor& artifact,
                                         const std::vector<std::string>& layer_media_types,
                                         const Credentials* creds = nullptr);

 private:
  SubjectReferrers ListOne(const Reference& repo, const std::string& subject,
                           const std::vector<std::string>& artifact_types,
                           const Credentials* creds);
  absl::StatusOr<std::vector<ArtifactDescriptor>> ViaApi(const Reference& repo,
                                                         const std::string& subject,
                                                         const std::vector<std::string>& types,
                                                         const Credentials* creds, bool& supported);
  absl::StatusOr<std::vector<ArtifactDescriptor>> ViaTagSchema(
      const Reference& repo, const std::string& subject, const std::vector<std::string>& types,
      const Credentials* creds);

  RegistryClient* client_;
  const absl::Time deadline_;
};

// The tag the fallback schema uses for a subject: "sha256-<hex>".
std::string ReferrersTag(absl::string_view digest);

// The newest of `artifacts` with that artifactType, by the
// org.opencontainers.image.created annotation (RFC 3339; the
// oci.opencontainers.image.created spelling is accepted too); nullptr if none.
const ArtifactDescriptor* NewestArtifact(const std::vector<ArtifactDescriptor>& artifacts,
                                         absl::string_view artifact_type);

// The referrers index text for descriptors (what the cache stores and what
// the tag schema holds).
std::string ReferrersIndexJson(const std::vector<ArtifactDescriptor>& artifacts);

}  // namespace imgsel::registry
