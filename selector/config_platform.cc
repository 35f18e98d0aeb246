#include "selector/config_platform.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "simdjson.h"

namespace imgsel {
namespace {

bool IsImageManifestType(absl::string_view media_type) {
  return media_type == kOciManifestMediaType || media_type == kDockerManifestMediaType;
}

bool WantsConfig(const Descriptor& d) {
  return !d.platform && d.invalid_reason.empty() && d.artifact_type.empty() &&
         IsImageManifestType(d.media_type);
}

absl::StatusOr<simdjson::dom::object> ParseObject(simdjson::dom::parser& parser,
                                                  absl::string_view bytes, absl::string_view what) {
  simdjson::dom::element doc;
  if (auto err = parser.parse(bytes.data(), bytes.size()).get(doc); err) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not valid JSON: ", simdjson::error_message(err)));
  }
  simdjson::dom::object o;
  if (doc.get_object().get(o) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": expected a JSON object"));
  }
  return o;
}

}  // namespace

absl::StatusOr<Platform> PlatformFromConfig(absl::string_view config) {
  simdjson::dom::parser parser;
  auto root = ParseObject(parser, config, "image config");
  if (!root.ok()) return root.status();
  Platform p;
  for (auto [key, out] : {std::pair<const char*, std::string*>{"os", &p.os},
                          {"architecture", &p.architecture},
                          {"variant", &p.variant}}) {
    simdjson::dom::element e;
    if ((*root)[key].get(e) != simdjson::SUCCESS) continue;
    std::string_view v;
    if (e.get_string().get(v) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(
          absl::StrCat("image config: /", key, ": expected a string"));
    }
    out->assign(v.data(), std::min<size_t>(v.size(), 64));
  }
  return NormalizePlatform(std::move(p));
}

absl::StatusOr<std::string> ConfigDigestOf(absl::string_view manifest) {
  simdjson::dom::parser parser;
  auto root = ParseObject(parser, manifest, "manifest");
  if (!root.ok()) return root.status();
  std::string_view digest;
  if ((*root)["config"]["digest"].get_string().get(digest) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("manifest: /config/digest: missing or not a string");
  }
  return std::string(digest);
}

bool HasPlatformlessImages(const ParsedIndex& index) {
  for (const Descriptor& d : index.manifests) {
    if (WantsConfig(d)) return true;
  }
  return false;
}

std::map<std::string, Platform> ReadConfigPlatforms(const ParsedIndex& index,
                                                    VerifiedBlobReader read_manifest,
                                                    VerifiedBlobReader read_blob) {
  std::map<std::string, Platform> out;
  size_t reads = 0;
  for (const Descriptor& d : index.manifests) {
    if (!WantsConfig(d) || out.contains(std::string(d.digest))) continue;
    if (reads++ == kMaxConfigReads) break;
    auto manifest = read_manifest(d.digest, kMaxManifestBytes);
    if (!manifest.ok()) continue;
    auto config_digest = ConfigDigestOf(*manifest);
    if (!config_digest.ok()) continue;
    auto config = read_blob(*config_digest, kMaxConfigBytes);
    if (!config.ok()) continue;
    auto platform = PlatformFromConfig(*config);
    if (!platform.ok()) continue;
    out.emplace(std::string(d.digest), *std::move(platform));
  }
  return out;
}

}  // namespace imgsel
