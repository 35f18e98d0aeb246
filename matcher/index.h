// Parsing an OCI image index or a Docker manifest list into candidates.
//
//   application/vnd.oci.image.index.v1+json                  OCI index
//   application/vnd.docker.distribution.manifest.list.v2+json Docker list
//   application/vnd.oci.image.manifest.v1+json,
//   application/vnd.docker.distribution.manifest.v2+json     a single manifest:
//                                                           nothing to choose
//
// A document without mediaType is classified by shape (`manifests` -> index,
// `config`/`layers` -> manifest). Everything Go tools drop is kept:
// platform.features, os.features, os.version, annotations, artifactType.
// Unknown fields are ignored. A descriptor with a bad digest, a negative size
// or a field of the wrong type is kept with `invalid_reason` set (the matcher
// rejects it with that reason); the document itself is bounded by
// ParseLimits and rejected with an error that says which limit and where.
//
// Pure function of its input; thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "matcher/platform.h"
#include "oci/media_types.h"

namespace imgsel {

// Everything in a ParsedIndex - strings, lists, descriptors - views storage
// the ParsedIndex shares ownership of: valid as long as any copy of the
// ParsedIndex (or a Decision holding one) lives. Copies are cheap and share.
using Annotation = std::pair<absl::string_view, absl::string_view>;
using AnnotationList = absl::Span<const Annotation>;  // document order

struct Descriptor {
  absl::string_view media_type;
  absl::string_view digest;
  int64_t size = 0;
  std::optional<PlatformView> platform;
  AnnotationList annotations;
  absl::string_view artifact_type;
  // Non-empty when the descriptor is unusable: "manifests[3].digest: ...".
  absl::string_view invalid_reason;

  // The annotation's value, or nullopt.
  std::optional<absl::string_view> Annotation(absl::string_view key) const;
};

enum class DocumentKind { kOciIndex, kDockerManifestList, kManifest };

struct ParsedIndex {
  DocumentKind kind = DocumentKind::kOciIndex;
  absl::string_view media_type;
  absl::Span<const Descriptor> manifests;  // in index order
  AnnotationList annotations;              // the document's own (an index's or a manifest's)
  std::shared_ptr<const void> storage;     // keeps the views alive
};

// The document's media type: the one it declares, else the one its shape
// says (an OCI index, or an OCI manifest), as ParseIndex classified it.
absl::string_view DocumentMediaType(const ParsedIndex& index);

struct ParseLimits {
  size_t max_bytes = 4 << 20;
  size_t max_entries = 10000;
  size_t max_depth = 64;
};

// `source` names the document in errors ("index.json", "-").
absl::StatusOr<ParsedIndex> ParseIndex(absl::string_view json, absl::string_view source = "index",
                                       const ParseLimits& limits = {});

}  // namespace imgsel
