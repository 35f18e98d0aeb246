#include "selector/image_content.h"

#include <utility>

#include "matcher/string_view_bridge.h"
#include "registry/client.h"
#include "selector/config_platform.h"
#include "simdjson.h"

namespace imgsel {

std::vector<VerifiedBlob> FetchImageContent(
    registry::RegistryClient& client, const registry::Reference& repo, absl::string_view media_type,
    absl::string_view digest, int64_t size, const registry::Credentials* creds, absl::Time deadline,
    const std::function<void(absl::StatusOr<std::string>)>& manifest_read) {
  std::vector<VerifiedBlob> out;
  auto manifest = client.FetchManifest(repo, digest, creds, deadline);
  if (manifest_read) {
    manifest_read(manifest.ok() ? absl::StatusOr<std::string>(manifest->bytes)
                                : absl::StatusOr<std::string>(manifest.status()));
  }
  // The size is the descriptor's word as much as the digest is.
  if (!manifest.ok() || static_cast<int64_t>(manifest->bytes.size()) != size) return out;
  out.push_back({std::string(media_type), std::string(digest), std::move(manifest->bytes)});

  simdjson::dom::parser parser;
  simdjson::dom::element config;
  std::string_view config_type, config_digest;
  int64_t config_size = 0;
  const std::string& text = out.front().bytes;
  if (parser.parse(text.data(), text.size()).get(config) != simdjson::SUCCESS ||
      config["config"].get(config) != simdjson::SUCCESS ||
      config["mediaType"].get_string().get(config_type) != simdjson::SUCCESS ||
      config["digest"].get_string().get(config_digest) != simdjson::SUCCESS ||
      config["size"].get_int64().get(config_size) != simdjson::SUCCESS || config_size < 0 ||
      static_cast<uint64_t>(config_size) > kMaxConfigBytes) {
    return out;
  }
  auto blob = client.FetchBlob(repo, ToAbsl(config_digest), static_cast<size_t>(config_size), creds,
                               deadline);
  if (!blob.ok() || static_cast<int64_t>(blob->size()) != config_size) return out;
  out.push_back({std::string(config_type), std::string(config_digest), *std::move(blob)});
  return out;
}

}  // namespace imgsel
