// The chosen image's own small documents, fetched while a selection waits on
// the registry anyway, so the runtime that pulls the image next need not
// fetch them again.
//
//   manifest  GET /v2/<name>/manifests/<digest>   its size must be the
//                                                 descriptor's
//   config    GET /v2/<name>/blobs/<digest>       the manifest's config
//                                                 descriptor; at most
//                                                 kMaxConfigBytes
//                                                 (config_platform.h)
//
// Every blob returned is the exact bytes whose digest was checked
// (RegistryClient verifies each fetch), and comes with the media type and
// size its descriptor gave. A failure is never an error: what was fetched
// before it is returned (the manifest alone, or nothing), and the runtime
// fetches the rest itself. Layers are never fetched here.
//
// Thread-safe (as the RegistryClient it uses).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "registry/auth.h"
#include "registry/reference.h"

namespace imgsel {

namespace registry {
class RegistryClient;
}  // namespace registry

struct VerifiedBlob {
  std::string media_type;
  std::string digest;
  std::string bytes;  // hashes to `digest`
};

// The manifest `digest` (of `size` bytes) of `repo`, then its config; in that
// order, as far as they were fetched by `deadline`. `manifest_read`, when
// given, is called once with the manifest's verified bytes (or why there
// are none) as soon as they are in, before the config is asked for: whoever
// also needs the manifest waits for that instead of fetching it again.
std::vector<VerifiedBlob> FetchImageContent(
    registry::RegistryClient& client, const registry::Reference& repo, absl::string_view media_type,
    absl::string_view digest, int64_t size, const registry::Credentials* creds, absl::Time deadline,
    const std::function<void(absl::StatusOr<std::string>)>& manifest_read = nullptr);

}  // namespace imgsel
