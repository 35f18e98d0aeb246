// Media types: every OCI and Docker media type imgsel reads or writes, and
// the Accept list it sends for manifests, in one place.
//
//   media type                                                  what it is
//   application/vnd.oci.image.index.v1+json                     OCI index
//   application/vnd.docker.distribution.manifest.list.v2+json   Docker list
//   application/vnd.oci.image.manifest.v1+json                  OCI manifest
//   application/vnd.docker.distribution.manifest.v2+json        Docker manifest
//   application/vnd.oci.empty.v1+json                           empty config
//                                                               of an artifact
//
// Compatibility artifacts (NFD image compatibility, and the OCI proposal):
//
//   artifactType                                       its layers
//   application/vnd.nfd.image-compatibility.v1alpha1   ...spec.v1alpha1+yaml
//   application/vnd.oci.image-compatibility.v1         ...nfd.v1alpha1+json,
//                                                      ...spec.v1+json
//
// The key/value spec is also read under the media type
// application/k8s.nfd.image-compatibility.spec.v1+json.
//
// Constants only; thread-safe.
#pragma once

#include "absl/strings/string_view.h"

namespace imgsel {

// Image documents: what an index names and a reference resolves to.
inline constexpr absl::string_view kOciIndexMediaType = "application/vnd.oci.image.index.v1+json";
inline constexpr absl::string_view kOciManifestMediaType =
    "application/vnd.oci.image.manifest.v1+json";
inline constexpr absl::string_view kDockerListMediaType =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr absl::string_view kDockerManifestMediaType =
    "application/vnd.docker.distribution.manifest.v2+json";

// Accept on manifest requests: the four above, indexes first (a registry
// that can answer with either gives the index, which is what is selected
// from). tests/oci/media_types_test.cc holds it equal to the four.
inline constexpr absl::string_view kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

// The config of an artifact that has none of its own.
inline constexpr absl::string_view kEmptyConfigMediaType = "application/vnd.oci.empty.v1+json";

// Compatibility artifacts: their artifactType, then their layers.
inline constexpr absl::string_view kNfdArtifactType =
    "application/vnd.nfd.image-compatibility.v1alpha1";
inline constexpr absl::string_view kOciCompatArtifactType =
    "application/vnd.oci.image-compatibility.v1";
// NFD's spec, YAML.
inline constexpr absl::string_view kNfdSpecLayerType =
    "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml";
// The OCI proposal's NFD profile, JSON.
inline constexpr absl::string_view kOciCompatNfdLayerType =
    "application/vnd.oci.image-compatibility.nfd.v1alpha1+json";
// The OCI proposal's key/value spec, JSON.
inline constexpr absl::string_view kOciCompatSpecLayerType =
    "application/vnd.oci.image-compatibility.spec.v1+json";
// The same key/value groups under the media type the seed's own Proposal F
// artifact uses.
inline constexpr absl::string_view kK8sNfdCompatSpecLayerType =
    "application/k8s.nfd.image-compatibility.spec.v1+json";
// Every layer media type imgsel reads, for fetches that ask for them.
inline constexpr absl::string_view kReadableLayerTypes[] = {
    kNfdSpecLayerType, kOciCompatNfdLayerType, kOciCompatSpecLayerType, kK8sNfdCompatSpecLayerType};

}  // namespace imgsel
