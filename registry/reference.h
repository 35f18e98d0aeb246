// Image references, parsed and normalised the way container tools do.
//
//   input                                   registry    repository        tag     digest
//   nginx                                   docker.io   library/nginx     latest
//   user/app:1.2                            docker.io   user/app          1.2
//   localhost:5000/app                      localhost:5000 app            latest
//   ghcr.io/o/app@sha256:<hex>              ghcr.io     o/app                     sha256:<hex>
//   host/app:v1@sha256:<hex>                host        app               v1      sha256:<hex>
//
// The first path component is a registry host when it contains '.' or ':'
// or is "localhost"; otherwise the registry is docker.io, and a single-part
// name gets the "library/" prefix. docker.io (and index.docker.io) is served
// by registry-1.docker.io. Repository components are lowercase
// [a-z0-9]+ joined by '.', '_', '__' or '-'; tags match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127};
// digests pass ValidateDigest. The normalised name ("docker.io/library/nginx")
// is at most 255 characters, as Docker counts it. A reference with neither tag nor digest gets
// ":latest". Uppercase in the repository is an error (as docker says), not
// silently lowered; the registry host is case-insensitive and lowered.
//
// Pure functions, thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imgsel::registry {

struct Reference {
  std::string registry;    // "docker.io", "localhost:5000"
  std::string repository;  // "library/nginx"
  std::string tag;         // may be empty when digest is set
  std::string digest;      // "sha256:..." or empty

  // The host:port to contact for the distribution API ("registry-1.docker.io"
  // for docker.io).
  std::string ApiHost() const;
  // The familiar full form: "docker.io/library/nginx:latest",
  // "host/app:v1@sha256:...".
  std::string String() const;
  // "registry/repository", no tag or digest.
  std::string Name() const;
  // The tag, or the digest when pinned: what goes after /manifests/.
  std::string ManifestReference() const;
};

// Parses and normalises; InvalidArgument naming the reference and the rule broken.
absl::StatusOr<Reference> ParseReference(absl::string_view ref);

}  // namespace imgsel::registry
