#include "registry/attach.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "matcher/index.h"
#include "matcher/string_view_bridge.h"
#include "oci/created.h"
#include "oci/digest.h"
#include "oci/json_writer.h"
#include "simdjson.h"

namespace imgsel::registry {
namespace {

constexpr absl::string_view kEmptyJson = "{}";

void Descriptor(JsonWriter& w, absl::string_view media_type, absl::string_view digest,
                int64_t size) {
  w.Key("mediaType").String(media_type).Key("digest").String(digest).Key("size").Int(size);
}

// What a referrers API answer must be: an OCI index, by its mediaType or,
// declaring none, by its manifests.
bool IsOciIndex(absl::string_view bytes) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(bytes.data(), bytes.size()).get(root) != simdjson::SUCCESS) return false;
  std::string_view mt;
  if (root["mediaType"].get_string().get(mt) == simdjson::SUCCESS)
    return ToAbsl(mt) == kOciIndexMediaType;
  simdjson::dom::element unused;
  return root["manifests"].get(unused) == simdjson::SUCCESS;
}

}  // namespace

absl::StatusOr<AttachResult> Attach(RegistryClient& client, const Reference& ref,
                                    absl::string_view content, const AttachOptions& options,
                                    const Credentials* creds) {
  return AttachLayers(client, ref, {{content, "", options.title}}, options, creds);
}

absl::StatusOr<AttachResult> AttachLayers(RegistryClient& client, const Reference& ref,
                                          const std::vector<AttachLayer>& layers,
                                          const AttachOptions& options, const Credentials* creds) {
  if (layers.empty()) return absl::InvalidArgumentError("an artifact needs at least one layer");
  if (options.artifact_type.empty()) {
    return absl::InvalidArgumentError("artifact type must not be empty");
  }
  auto subject = client.Resolve(ref, creds);
  if (!subject.ok()) return subject.status();
  AttachResult result;
  result.subject_digest = subject->digest;

  std::vector<std::string> layer_digests;
  for (const AttachLayer& layer : layers) {
    auto digest = client.PushBlob(ref, layer.content, creds);
    if (!digest.ok()) return digest.status();
    layer_digests.push_back(*std::move(digest));
  }
  auto config_digest = client.PushBlob(ref, kEmptyJson, creds);
  if (!config_digest.ok()) return config_digest.status();

  std::map<std::string, std::string> annotations(options.annotations.begin(),
                                                 options.annotations.end());
  if (!annotations.count(std::string(kCreatedAnnotation))) {
    annotations[std::string(kCreatedAnnotation)] = FormatCreated(options.created);
  }
  JsonWriter w;
  w.BeginObject().Key("schemaVersion").Int(2).Key("mediaType").String(kOciManifestMediaType);
  w.Key("artifactType").String(options.artifact_type);
  w.Key("config").BeginObject();
  Descriptor(w, kEmptyConfigMediaType, *config_digest, static_cast<int64_t>(kEmptyJson.size()));
  w.EndObject();
  w.Key("layers").BeginArray();
  for (size_t i = 0; i < layers.size(); ++i) {
    const AttachLayer& layer = layers[i];
    w.BeginObject();
    Descriptor(w, options.layer_media_type, layer_digests[i],
               static_cast<int64_t>(layer.content.size()));
    if (!layer.name.empty() || !layer.title.empty()) {
      w.Key("annotations").BeginObject();
      if (!layer.name.empty()) w.Key("name").String(layer.name);
      if (!layer.title.empty()) w.Key("org.opencontainers.image.title").String(layer.title);
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("subject").BeginObject();
  Descriptor(w, subject->media_type, subject->digest, static_cast<int64_t>(subject->bytes.size()));
  w.EndObject();
  w.Key("annotations").BeginObject();
  for (const auto& [k, v] : annotations) w.Key(k).String(v);
  w.EndObject().EndObject();
  std::string manifest = w.Take();

  auto manifest_digest = client.PushManifest(ref, kOciManifestMediaType, manifest, "", creds);
  if (!manifest_digest.ok()) return manifest_digest.status();
  result.manifest_digest = *manifest_digest;
  result.manifest_size = static_cast<int64_t>(manifest.size());

  // Does the registry index the subject itself?
  using Mode = RegistryClient::ReferrersMode;
  auto probe = client.Get(ref, absl::StrCat(ref.repository, "/referrers/", subject->digest),
                          kOciIndexMediaType, client.options().max_manifest_bytes, creds);
  if (!probe.ok()) return probe.status();
  if (probe->status == 200 && IsOciIndex(probe->body)) {
    client.set_referrers_mode(ref, Mode::kApi);
    return result;
  }
  client.set_referrers_mode(ref, Mode::kTagSchema);
  result.via_tag_schema = true;

  std::string tag = ReferrersTag(subject->digest);
  auto existing = client.Get(ref, absl::StrCat(ref.repository, "/manifests/", tag),
                             kOciIndexMediaType, client.options().max_manifest_bytes, creds);
  if (!existing.ok()) return existing.status();
  std::vector<std::string> entries;  // raw JSON, so fields we do not know survive
  if (existing->status == 200) {
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    simdjson::dom::array manifests;
    if (parser.parse(existing->body.data(), existing->body.size()).get(root) != simdjson::SUCCESS ||
        root["manifests"].get_array().get(manifests) != simdjson::SUCCESS) {
      return absl::FailedPreconditionError(
          absl::StrCat("tag ", ref.Name(), ":", tag,
                       " exists but is not an image index; refusing to overwrite it"));
    }
    for (simdjson::dom::element m : manifests) {
      std::string_view d;
      if (m["digest"].get_string().get(d) == simdjson::SUCCESS && d == *manifest_digest) {
        return result;  // already listed
      }
      entries.push_back(simdjson::minify(m));
    }
  } else if (existing->status != 404) {
    return StatusFromHttp(*existing, absl::StrCat("GET ", ref.Name(), ":", tag));
  }
  JsonWriter entry;
  entry.BeginObject();
  Descriptor(entry, kOciManifestMediaType, *manifest_digest, result.manifest_size);
  entry.Key("artifactType").String(options.artifact_type);
  entry.Key("annotations").BeginObject();
  for (const auto& [k, v] : annotations) entry.Key(k).String(v);
  entry.EndObject().EndObject();
  entries.push_back(entry.Take());

  std::string index = absl::StrCat("{\"schemaVersion\":2,\"mediaType\":\"", kOciIndexMediaType,
                                   "\",\"manifests\":[", absl::StrJoin(entries, ","), "]}");
  auto pushed = client.PushManifest(ref, kOciIndexMediaType, index, tag, creds);
  if (!pushed.ok()) return pushed.status();
  return result;
}

}  // namespace imgsel::registry
