#include "registry/referrers.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "matcher/compat_eval.h"
#include "matcher/digest.h"
#include "matcher/index.h"
#include "matcher/json_writer.h"
#include "matcher/string_view_bridge.h"
#include "simdjson.h"

namespace imgsel::registry {
namespace {

constexpr int kMaxPages = 16;
constexpr size_t kMaxParallelSubjects = 8;
constexpr size_t kMaxEntries = 10000;
constexpr absl::string_view kIndexAccept = "application/vnd.oci.image.index.v1+json";

bool Wanted(const std::vector<std::string>& types, absl::string_view t) {
  return types.empty() || std::find(types.begin(), types.end(), t) != types.end();
}

Annotations ReadAnnotations(simdjson::dom::element e);
std::string Str(simdjson::dom::element e, const char* key);

// Descriptors of a referrers index; a non-index document is an error.
// Entries with a bad digest or size are skipped.
absl::StatusOr<std::vector<ArtifactDescriptor>> ParseReferrersIndex(absl::string_view json,
                                                                    absl::string_view source,
                                                                    size_t max_bytes) {
  if (json.size() > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(source, ": ", json.size(), " bytes, over the limit of ", max_bytes));
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(json.data(), json.size()).get(root); err) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not valid JSON (", simdjson::error_message(err), ")"));
  }
  simdjson::dom::array manifests;
  std::string media_type = Str(root, "mediaType");
  if (!root.is_object() || (!media_type.empty() && media_type != kOciIndexMediaType) ||
      root["manifests"].get_array().get(manifests) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not an OCI image index"));
  }
  if (manifests.size() > kMaxEntries) {
    return absl::ResourceExhaustedError(
        absl::StrCat(source, ": more than ", kMaxEntries, " descriptors"));
  }
  std::vector<ArtifactDescriptor> out;
  for (simdjson::dom::element m : manifests) {
    ArtifactDescriptor a;
    a.digest = Str(m, "digest");
    if (!m.is_object() || !ValidateDigest(a.digest).ok()) continue;
    if (m["size"].get_int64().get(a.size) != simdjson::SUCCESS || a.size < 0) continue;
    a.media_type = Str(m, "mediaType");
    a.artifact_type = Str(m, "artifactType");
    a.annotations = ReadAnnotations(m);
    out.push_back(std::move(a));
  }
  return out;
}

void Filter(std::vector<ArtifactDescriptor>& list, const std::vector<std::string>& types) {
  list.erase(
      std::remove_if(list.begin(), list.end(),
                     [&](const ArtifactDescriptor& a) { return !Wanted(types, a.artifact_type); }),
      list.end());
}

// The target of a Link header's rel="next", or empty.
std::string NextLink(const HttpResponse& r) {
  const std::string* link = r.Header("link");
  if (link == nullptr || !absl::StrContains(*link, "rel=\"next\"")) return "";
  size_t open = link->find('<');
  size_t close = link->find('>', open);
  if (open == std::string::npos || close == std::string::npos) return "";
  return link->substr(open + 1, close - open - 1);
}

Annotations ReadAnnotations(simdjson::dom::element e) {
  Annotations out;
  simdjson::dom::object o;
  if (e["annotations"].get_object().get(o) != simdjson::SUCCESS) return out;
  for (auto field : o) {
    std::string_view v;
    if (field.value.get_string().get(v) != simdjson::SUCCESS) continue;
    out.emplace_back(std::string(field.key), std::string(v));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Str(simdjson::dom::element e, const char* key) {
  std::string_view v;
  if (e[key].get_string().get(v) != simdjson::SUCCESS) return "";
  return std::string(v);
}

}  // namespace

std::string ReferrersTag(absl::string_view digest) {
  std::string tag(digest);
  std::replace(tag.begin(), tag.end(), ':', '-');
  return tag.substr(0, 128);
}

const ArtifactDescriptor* NewestArtifact(const std::vector<ArtifactDescriptor>& artifacts,
                                         absl::string_view artifact_type) {
  const ArtifactDescriptor* best = nullptr;
  absl::Time best_time = absl::InfinitePast();
  for (const ArtifactDescriptor& a : artifacts) {
    if (a.artifact_type != artifact_type) continue;
    absl::Time t = absl::InfinitePast();
    for (const auto& [k, v] : a.annotations) {
      if (auto parsed = ParseCreatedAnnotation(k, v)) t = std::max(t, *parsed);
    }
    if (best == nullptr || t > best_time) {
      best = &a;
      best_time = t;
    }
  }
  return best;
}

std::string ReferrersIndexJson(const std::vector<ArtifactDescriptor>& artifacts) {
  JsonWriter w;
  w.BeginObject().Key("schemaVersion").Int(2).Key("mediaType").String(kIndexAccept);
  w.Key("manifests").BeginArray();
  for (const ArtifactDescriptor& a : artifacts) {
    w.BeginObject().Key("mediaType").String(a.media_type).Key("digest").String(a.digest);
    w.Key("size").Int(a.size);
    if (!a.artifact_type.empty()) w.Key("artifactType").String(a.artifact_type);
    if (!a.annotations.empty()) {
      w.Key("annotations").BeginObject();
      for (const auto& [k, v] : a.annotations) w.Key(k).String(v);
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray().EndObject();
  return w.Take();
}

absl::StatusOr<std::vector<ArtifactDescriptor>> ReferrersClient::ViaApi(
    const Reference& repo, const std::string& subject, const std::vector<std::string>& types,
    const Credentials* creds, bool& supported) {
  supported = true;
  std::string path = absl::StrCat(repo.repository, "/referrers/", subject);
  if (types.size() == 1) absl::StrAppend(&path, "?artifactType=", types.front());
  std::vector<ArtifactDescriptor> all;
  size_t cap = client_->options().max_manifest_bytes;
  for (int page = 0; page < kMaxPages && !path.empty(); ++page) {
    auto resp = client_->Get(repo, path, kIndexAccept, cap, creds, deadline_);
    if (!resp.ok()) return resp.status();
    std::string what = absl::StrCat("referrers of ", repo.Name(), "@", subject);
    if (resp->status == 404 || resp->status == 405 || (resp->status == 400 && page == 0)) {
      supported = false;
      return all;
    }
    if (resp->status != 200) return StatusFromHttp(*resp, what);
    auto list = ParseReferrersIndex(resp->body, what, cap);
    if (!list.ok()) {
      if (page > 0) return list.status();
      supported = false;  // an answer that is not an index: no referrers API
      return all;
    }
    const std::string* applied = resp->Header("oci-filters-applied");
    bool filtered = applied != nullptr && absl::StrContains(*applied, "artifactType");
    if (!filtered) Filter(*list, types);
    for (auto& a : *list) all.push_back(std::move(a));
    // A next page is on the same registry: keep only its path after /v2/.
    std::string next = NextLink(*resp);
    size_t v2 = next.find("/v2/");
    path = v2 == std::string::npos ? "" : next.substr(v2 + 4);
  }
  return all;
}

absl::StatusOr<std::vector<ArtifactDescriptor>> ReferrersClient::ViaTagSchema(
    const Reference& repo, const std::string& subject, const std::vector<std::string>& types,
    const Credentials* creds) {
  size_t cap = client_->options().max_manifest_bytes;
  std::string tag = ReferrersTag(subject);
  auto resp = client_->Get(repo, absl::StrCat(repo.repository, "/manifests/", tag), kIndexAccept,
                           cap, creds, deadline_);
  std::string what = absl::StrCat("referrers tag ", repo.Name(), ":", tag);
  if (!resp.ok()) {
    if (absl::IsResourceExhausted(resp.status())) {
      return absl::ResourceExhaustedError(
          absl::StrCat(what, ": larger than the manifest limit of ", cap, " bytes"));
    }
    return resp.status();
  }
  if (resp->status == 404) return std::vector<ArtifactDescriptor>();
  if (resp->status != 200) return StatusFromHttp(*resp, what);
  auto list = ParseReferrersIndex(resp->body, what, cap);
  if (!list.ok()) return list.status();
  Filter(*list, types);
  return list;
}

SubjectReferrers ReferrersClient::ListOne(const Reference& repo, const std::string& subject,
                                          const std::vector<std::string>& types,
                                          const Credentials* creds) {
  SubjectReferrers out;
  out.subject = subject;
  if (absl::Status s = ValidateDigest(subject); !s.ok()) {
    out.status = absl::InvalidArgumentError(
        absl::StrCat("subject \"", subject.substr(0, 140), "\": ", s.message()));
    return out;
  }
  std::vector<std::string> sorted_types = types;
  std::sort(sorted_types.begin(), sorted_types.end());
  // The registry and repository are part of the key: a listing is that
  // registry's answer about that repository.
  std::string key =
      absl::StrCat("referrers ", repo.Name(), "@", subject, " ", absl::StrJoin(sorted_types, ","));
  DiskCache* cache = client_->cache();
  if (cache != nullptr) {
    if (auto text = cache->GetRecord(key, client_->options().referrers_ttl)) {
      auto list =
          ParseReferrersIndex(*text, "cached referrers", client_->options().max_manifest_bytes);
      if (list.ok()) {
        out.artifacts = std::move(*list);
        out.from_cache = true;
        return out;
      }
    }
  }
  using Mode = RegistryClient::ReferrersMode;
  Mode mode = client_->referrers_mode(repo);
  absl::StatusOr<std::vector<ArtifactDescriptor>> list;
  bool api_answered = false;
  if (mode != Mode::kTagSchema) {
    bool supported = false;
    list = ViaApi(repo, subject, types, creds, supported);
    if (list.ok()) {
      client_->set_referrers_mode(repo, supported ? Mode::kApi : Mode::kTagSchema);
      api_answered = supported;
    }
  }
  if (!api_answered && (mode == Mode::kTagSchema || list.ok())) {
    out.via_tag_schema = true;
    list = ViaTagSchema(repo, subject, types, creds);
  }
  if (!list.ok()) {
    out.status = list.status();
    return out;
  }
  out.artifacts = std::move(*list);
  if (cache != nullptr) cache->PutRecord(key, ReferrersIndexJson(out.artifacts)).IgnoreError();
  return out;
}

std::vector<SubjectReferrers> ReferrersClient::List(const Reference& repo,
                                                    const std::vector<std::string>& subjects,
                                                    const std::vector<std::string>& types,
                                                    const Credentials* creds) {
  std::vector<SubjectReferrers> out(subjects.size());
  if (subjects.size() <= 1) {
    for (size_t i = 0; i < subjects.size(); ++i) out[i] = ListOne(repo, subjects[i], types, creds);
    return out;
  }
  // While it is not known whether this repository is served by the
  // referrers API, the first subject finds out alone; the others then go
  // straight to the right place instead of each probing the API.
  std::atomic<size_t> next{0};
  if (client_->referrers_mode(repo) == RegistryClient::ReferrersMode::kUnknown) {
    out[0] = ListOne(repo, subjects[0], types, creds);
    next = 1;
  }
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < subjects.size(); i = next.fetch_add(1)) {
      out[i] = ListOne(repo, subjects[i], types, creds);
    }
  };
  std::vector<std::thread> workers;
  size_t n = std::min(subjects.size(), kMaxParallelSubjects);
  for (size_t i = 0; i < n; ++i) workers.emplace_back(work);
  for (std::thread& t : workers) t.join();
  return out;
}

absl::StatusOr<Artifact> ReferrersClient::FetchArtifact(const Reference& repo,
                                                        const ArtifactDescriptor& artifact,
                                                        const std::vector<std::string>& layer_types,
                                                        const Credentials* creds) {
  std::string what = absl::StrCat("artifact ", repo.Name(), "@", artifact.digest);
  auto manifest = client_->FetchManifest(repo, artifact.digest, creds, deadline_);
  if (!manifest.ok()) return manifest.status();
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(manifest->bytes.data(), manifest->bytes.size()).get(root); err) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not valid JSON (", simdjson::error_message(err), ")"));
  }
  simdjson::dom::array layers;
  if (!root.is_object() || root["layers"].get_array().get(layers) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not an image manifest (no layers array)"));
  }
  Artifact out;
  out.digest = artifact.digest;
  out.artifact_type = Str(root, "artifactType");
  simdjson::dom::element config;
  if (out.artifact_type.empty() && root["config"].get(config) == simdjson::SUCCESS) {
    out.artifact_type = Str(config, "mediaType");
  }
  simdjson::dom::element subject;
  if (root["subject"].get(subject) == simdjson::SUCCESS) out.subject = Str(subject, "digest");
  out.annotations = ReadAnnotations(root);
  size_t cap = client_->options().max_blob_bytes;
  size_t index = 0;
  for (simdjson::dom::element layer : layers) {
    std::string where = absl::StrCat(what, ": layers[", index++, "]");
    ArtifactLayer l;
    l.media_type = Str(layer, "mediaType");
    if (!Wanted(layer_types, l.media_type)) continue;
    l.digest = Str(layer, "digest");
    if (absl::Status s = ValidateDigest(l.digest); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".digest: ", s.message()));
    }
    int64_t size = 0;
    if (layer["size"].get_int64().get(size) == simdjson::SUCCESS &&
        (size < 0 || static_cast<uint64_t>(size) > cap)) {
      return absl::ResourceExhaustedError(absl::StrCat(where, " (", l.digest, "): declared size ",
                                                       size, " bytes is over the limit of ", cap));
    }
    l.annotations = ReadAnnotations(layer);
    auto bytes = client_->FetchBlob(repo, l.digest, cap, creds, deadline_);
    if (!bytes.ok()) {
      return absl::Status(bytes.status().code(),
                          absl::StrCat(where, ": ", bytes.status().message()));
    }
    l.bytes = std::move(*bytes);
    out.layers.push_back(std::move(l));
  }
  return out;
}

}  // namespace imgsel::registry
