// The platform of an index entry that names none, from its image config.
//
// containerd keeps an index entry without `platform` and, when it unpacks
// one, reads the manifest's config and runs it only if the config's
// os/architecture match the host. imgsel does the same before selecting, so
// such an entry is eligible exactly when containerd would run it (it still
// ranks after entries with a platform). Artifacts (a descriptor declaring an
// artifactType) are not images and are not read.
//
// I/O comes through the caller's reader, which must return a blob only
// after checking it against the digest (and size) it was asked for. Bounded:
// at most kMaxConfigReads entries per index, each manifest and config read
// capped; an entry whose blobs cannot be read or parsed is left out (the
// matcher then says it has no platform). Thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "matcher/index.h"
#include "matcher/platform.h"

namespace imgsel {

// Platform-less entries read per index: indexes that rely on configs list a
// handful at most; a hostile one must not make a node read thousands.
inline constexpr size_t kMaxConfigReads = 8;
inline constexpr size_t kMaxManifestBytes = 4 << 20;
inline constexpr size_t kMaxConfigBytes = 4 << 20;

// Reads the blob `digest`, verified, at most `max_bytes`.
using VerifiedBlobReader =
    absl::FunctionRef<absl::StatusOr<std::string>(absl::string_view digest, size_t max_bytes)>;

// The os/architecture/variant an image config names, normalised; an error
// when `config` is not a JSON object or those fields are not strings.
absl::StatusOr<Platform> PlatformFromConfig(absl::string_view config);

// The config's digest in an image manifest.
absl::StatusOr<std::string> ConfigDigestOf(absl::string_view manifest);

// For each image-manifest entry of `index` without a platform (and without
// an artifactType), the platform its config names, keyed by entry digest.
// `read_manifest` reads manifests, `read_blob` configs.
std::map<std::string, Platform> ReadConfigPlatforms(const ParsedIndex& index,
                                                    VerifiedBlobReader read_manifest,
                                                    VerifiedBlobReader read_blob);

// Whether `index` has an entry ReadConfigPlatforms would read: callers skip
// all I/O when it has none (the common case).
bool HasPlatformlessImages(const ParsedIndex& index);

}  // namespace imgsel
