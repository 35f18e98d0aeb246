// Attaching an artifact to an image already in a registry, as `oras attach`
// does: no re-push of the image.
//
//   1. resolve REF to its descriptor (the subject)
//   2. push the content as a layer (or each of several, AttachLayers), and
//      the empty config `{}`
//      (application/vnd.oci.empty.v1+json)
//   3. push an OCI image manifest with `subject`, `artifactType`, and the
//      annotations (org.opencontainers.image.created = now, RFC 3339, unless given)
//   4. if the registry has no referrers API, add the manifest's descriptor to
//      the index tagged "sha256-<subject hex>" (fetched, or started empty)
//
// Step 4 is a read-modify-write: two attaches racing on one subject can lose
// an entry, as with every tag-schema client. Not thread-safe for one subject;
// otherwise as thread-safe as the client.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "registry/client.h"
#include "registry/referrers.h"

namespace imgsel::registry {

struct AttachOptions {
  std::string artifact_type = std::string(kNfdArtifactType);
  std::string layer_media_type = std::string(kNfdSpecLayerType);
  std::vector<std::pair<std::string, std::string>> annotations;  // manifest annotations
  std::string title;  // the layer's org.opencontainers.image.title (the file name); may be empty
  absl::Time created = absl::Now();
};

struct AttachResult {
  std::string subject_digest;
  std::string manifest_digest;
  int64_t manifest_size = 0;
  bool via_tag_schema = false;  // the sha256-<hex> index was updated
};

absl::StatusOr<AttachResult> Attach(RegistryClient& client, const Reference& ref,
                                    absl::string_view content, const AttachOptions& options,
                                    const Credentials* creds = nullptr);

// One layer of an artifact with several (Proposal G: one profile a layer).
struct AttachLayer {
  absl::string_view content;
  std::string name;   // the layer's `name` annotation (the profile); may be empty
  std::string title;  // org.opencontainers.image.title; may be empty
};

// Attach with several layers, all of options.layer_media_type, in the order
// given (options.title is not used: each layer has its own).
absl::StatusOr<AttachResult> AttachLayers(RegistryClient& client, const Reference& ref,
                                          const std::vector<AttachLayer>& layers,
                                          const AttachOptions& options,
                                          const Credentials* creds = nullptr);

}  // namespace imgsel::registry
