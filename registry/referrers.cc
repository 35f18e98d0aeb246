#include "registry/referrers.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "matcher/compat_eval.h"
#include "matcher/index.h"
#include "matcher/string_view_bridge.h"
#include "oci/created.h"
#include "oci/digest.h"
#include "oci/json_writer.h"
#include "simdjson.h"

namespace imgsel::registry {
namespace {

bool Wanted(const std::vector<std::string>& types, absl::string_view t) {
  return types.empty() || std::find(types.begin(), types.end(), t) != types.end();
}

Annotations ReadAnnotations(simdjson::dom::element e);
std::string Str(simdjson::dom::element e, const char* key);

}  // namespace

absl::StatusOr<std::vector<ArtifactDescriptor>> ParseReferrersIndex(
    absl::string_view json, absl::string_view source, size_t max_bytes,
    const std::function<absl::Status(size_t descriptors)>& admit) {
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
  if (absl::Status s = admit(manifests.size()); !s.ok()) return s;
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

namespace {

void Filter(std::vector<ArtifactDescriptor>& list, const std::vector<std::string>& types) {
  list.erase(
      std::remove_if(list.begin(), list.end(),
                     [&](const ArtifactDescriptor& a) { return !Wanted(types, a.artifact_type); }),
      list.end());
}

// The target of a Link header's rel="next" (RFC 8288), or empty.
std::string NextLink(const HttpResponse& r) {
  const std::string* link = r.Header("link");
  if (link == nullptr) return "";
  for (size_t open = link->find('<'); open != std::string::npos;) {
    size_t close = link->find('>', open);
    if (close == std::string::npos) break;
    size_t next_open = link->find('<', close);
    std::string params = absl::AsciiStrToLower(link->substr(close + 1, next_open - close - 1));
    absl::RemoveExtraAsciiWhitespace(&params);
    if (absl::StrContains(params, "rel=\"next\"") || absl::StrContains(params, "rel=next")) {
      return link->substr(open + 1, close - open - 1);
    }
    open = next_open;
  }
  return "";
}

// The next page as a path after "/v2/", empty when there is none. The Link
// must name this very listing on the host that answered; a registry that
// points anywhere else (another repository, another path, another host) is
// refused rather than followed.
absl::StatusOr<std::string> NextPage(const HttpResponse& r, const Reference& repo,
                                     absl::string_view subject, absl::string_view what) {
  std::string target = NextLink(r);
  if (target.empty()) return std::string();
  std::string url = absl::StartsWith(target, "?")
                        ? absl::StrCat(r.url.substr(0, r.url.find('?')), target)
                        : ResolveLocation(r.url, target);
  url = url.substr(0, url.find('#'));
  const std::string want = absl::StrCat("/v2/", repo.repository, "/referrers/", subject);
  size_t scheme_end = url.find("://");
  size_t path_start =
      scheme_end == std::string::npos ? std::string::npos : url.find('/', scheme_end + 3);
  absl::string_view path_and_query =
      path_start == std::string::npos ? "" : absl::string_view(url).substr(path_start);
  if (UrlOrigin(url).empty() || UrlOrigin(url) != UrlOrigin(r.url) ||
      path_and_query.substr(0, path_and_query.find('?')) != want) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": refusing Link rel=\"next\" <", EscapeRemoteText(target),
                     ">: a next page must be ", want, " on ", EscapeRemoteText(UrlOrigin(r.url))));
  }
  return std::string(path_and_query.substr(4));  // after "/v2/"
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

// A transport's "over the limit" error, told which cap set that limit.
absl::Status OverCap(const absl::Status& s, absl::string_view what, absl::string_view cap) {
  if (!absl::IsResourceExhausted(s)) return s;
  return absl::ResourceExhaustedError(absl::StrCat(what, ": ", s.message(), " (", cap, ")"));
}

}  // namespace

std::string ReferrersTag(absl::string_view digest) {
  std::string tag(digest);
  std::replace(tag.begin(), tag.end(), ':', '-');
  return tag.substr(0, 128);
}

std::vector<size_t> NewestOfEachReadableKind(const std::vector<ArtifactManifest>& manifests) {
  std::vector<std::string> kinds;
  kinds.reserve(manifests.size());
  for (const ArtifactManifest& m : manifests) {
    std::vector<std::string> media_types;
    for (const ArtifactLayerDescriptor& l : m.layers) media_types.push_back(l.media_type);
    kinds.push_back(ArtifactKind(m.artifact_type, media_types));
  }
  return NewestOfEachKind(
      manifests.size(), [&](size_t i) -> absl::string_view { return kinds[i]; },
      [&](size_t i) {
        return ArtifactCreated([&](absl::string_view key) -> std::optional<absl::string_view> {
          for (const auto& [k, v] : manifests[i].annotations) {
            if (k == key) return absl::string_view(v);
          }
          return std::nullopt;
        });
      });
}

std::string ReferrersIndexJson(const std::vector<ArtifactDescriptor>& artifacts) {
  JsonWriter w;
  w.BeginObject().Key("schemaVersion").Int(2).Key("mediaType").String(kOciIndexMediaType);
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

absl::StatusOr<ReferrersClient::Room> ReferrersClient::StartPage(ListingUse& use,
                                                                 absl::string_view what) {
  absl::MutexLock lock(&mu_);
  if (use.pages >= limits_.max_listing_pages) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": more than ", limits_.max_listing_pages, " pages, the per-subject cap"));
  }
  if (selection_pages_ >= limits_.max_selection_listing_pages) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": the per-selection cap of ",
                                                     limits_.max_selection_listing_pages,
                                                     " referrers pages is spent"));
  }
  Room room{limits_.max_listing_bytes - use.bytes,
            absl::StrCat("the per-subject cap of ", limits_.max_listing_bytes, " listing bytes")};
  size_t selection_left = limits_.max_selection_listing_bytes - selection_listing_bytes_;
  if (selection_left < room.bytes) {
    room = {selection_left, absl::StrCat("the per-selection cap of ",
                                         limits_.max_selection_listing_bytes, " listing bytes")};
  }
  if (room.bytes == 0) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": ", room.cap, " is spent"));
  }
  ++use.pages;
  ++selection_pages_;
  return room;
}

absl::Status ReferrersClient::CountPage(ListingUse& use, size_t bytes, size_t entries,
                                        absl::string_view what) {
  absl::MutexLock lock(&mu_);
  auto over = [&](absl::string_view per, size_t cap, absl::string_view unit) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": over the ", per, " cap of ", cap, " ", unit));
  };
  if (use.bytes + bytes > limits_.max_listing_bytes) {
    return over("per-subject", limits_.max_listing_bytes, "listing bytes");
  }
  if (selection_listing_bytes_ + bytes > limits_.max_selection_listing_bytes) {
    return over("per-selection", limits_.max_selection_listing_bytes, "listing bytes");
  }
  if (use.entries + entries > limits_.max_listing_entries) {
    return over("per-subject", limits_.max_listing_entries, "descriptors");
  }
  if (selection_entries_ + entries > limits_.max_selection_listing_entries) {
    return over("per-selection", limits_.max_selection_listing_entries, "descriptors");
  }
  use.bytes += bytes;
  use.entries += entries;
  selection_listing_bytes_ += bytes;
  selection_entries_ += entries;
  return absl::OkStatus();
}

absl::StatusOr<ReferrersClient::Room> ReferrersClient::ArtifactRoom(size_t artifact_bytes,
                                                                    absl::string_view what) {
  absl::MutexLock lock(&mu_);
  Room room{client_->options().max_blob_bytes,
            absl::StrCat("the layer limit of ", client_->options().max_blob_bytes, " bytes")};
  size_t artifact_left = limits_.max_artifact_bytes - artifact_bytes;
  if (artifact_left < room.bytes) {
    room = {artifact_left,
            absl::StrCat("the per-artifact cap of ", limits_.max_artifact_bytes, " bytes")};
  }
  size_t selection_left = limits_.max_selection_artifact_bytes - selection_artifact_bytes_;
  if (selection_left < room.bytes) {
    room = {selection_left, absl::StrCat("the per-selection cap of ",
                                         limits_.max_selection_artifact_bytes, " artifact bytes")};
  }
  if (room.bytes == 0) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": ", room.cap, " is spent"));
  }
  return room;
}

absl::Status ReferrersClient::CountArtifactBytes(size_t& artifact_bytes, size_t bytes,
                                                 absl::string_view what) {
  absl::MutexLock lock(&mu_);
  if (artifact_bytes + bytes > limits_.max_artifact_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": over the per-artifact cap of ",
                                                     limits_.max_artifact_bytes, " bytes"));
  }
  if (selection_artifact_bytes_ + bytes > limits_.max_selection_artifact_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": over the per-selection cap of ",
                                                     limits_.max_selection_artifact_bytes,
                                                     " artifact bytes"));
  }
  artifact_bytes += bytes;
  selection_artifact_bytes_ += bytes;
  return absl::OkStatus();
}

absl::Status ReferrersClient::TakeLayer(int& artifact_layers, absl::string_view what) {
  absl::MutexLock lock(&mu_);
  if (artifact_layers >= limits_.max_artifact_layers) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": more than ", limits_.max_artifact_layers, " layers, the per-artifact cap"));
  }
  if (selection_layers_ >= limits_.max_selection_layers) {
    return absl::ResourceExhaustedError(absl::StrCat(
        what, ": the per-selection cap of ", limits_.max_selection_layers, " layers is spent"));
  }
  ++artifact_layers;
  ++selection_layers_;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ArtifactDescriptor>> ReferrersClient::ViaApi(
    const Reference& repo, const std::string& subject, const std::vector<std::string>& types,
    const Credentials* creds, ListingUse& use, bool& supported) {
  supported = true;
  const std::string what = absl::StrCat("referrers of ", repo.Name(), "@", subject);
  std::string path = absl::StrCat(repo.repository, "/referrers/", subject);
  if (types.size() == 1) absl::StrAppend(&path, "?artifactType=", types.front());
  std::vector<ArtifactDescriptor> all;
  for (int page = 0; !path.empty(); ++page) {
    auto room = StartPage(use, what);
    if (!room.ok()) return room.status();
    auto resp = client_->Get(repo, path, kOciIndexMediaType, room->bytes, creds, deadline_);
    if (!resp.ok()) return OverCap(resp.status(), what, room->cap);
    if (resp->status == 404 || resp->status == 405 || (resp->status == 400 && page == 0)) {
      supported = false;
      return all;
    }
    if (resp->status != 200) return StatusFromHttp(*resp, what);
    auto list = ParseReferrersIndex(resp->body, what, room->bytes, [&](size_t n) {
      return CountPage(use, resp->body.size(), n, what);
    });
    if (!list.ok()) {
      if (page > 0 || absl::IsResourceExhausted(list.status())) return list.status();
      supported = false;  // an answer that is not an index: no referrers API
      return all;
    }
    const std::string* applied = resp->Header("oci-filters-applied");
    bool filtered = applied != nullptr && absl::StrContains(*applied, "artifactType");
    if (!filtered) Filter(*list, types);
    for (auto& a : *list) all.push_back(std::move(a));
    auto next = NextPage(*resp, repo, subject, what);
    if (!next.ok()) return next.status();
    path = *std::move(next);
  }
  return all;
}

absl::StatusOr<std::vector<ArtifactDescriptor>> ReferrersClient::ViaTagSchema(
    const Reference& repo, const std::string& subject, const std::vector<std::string>& types,
    const Credentials* creds, ListingUse& use) {
  std::string tag = ReferrersTag(subject);
  std::string what = absl::StrCat("referrers tag ", repo.Name(), ":", tag);
  auto room = StartPage(use, what);
  if (!room.ok()) return room.status();
  const size_t manifest_cap = client_->options().max_manifest_bytes;
  if (manifest_cap <= room->bytes) {
    *room = {manifest_cap, absl::StrCat("the manifest limit of ", manifest_cap, " bytes")};
  }
  auto resp = client_->Get(repo, absl::StrCat(repo.repository, "/manifests/", tag),
                           kOciIndexMediaType, room->bytes, creds, deadline_);
  if (!resp.ok()) return OverCap(resp.status(), what, room->cap);
  if (resp->status == 404) return std::vector<ArtifactDescriptor>();
  if (resp->status != 200) return StatusFromHttp(*resp, what);
  auto list = ParseReferrersIndex(resp->body, what, room->bytes, [&](size_t n) {
    return CountPage(use, resp->body.size(), n, what);
  });
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
  ListingUse use;
  DiskCache* cache = client_->cache();
  if (cache != nullptr) {
    if (auto text = cache->GetRecord(key, client_->options().referrers_ttl)) {
      std::string what = absl::StrCat("cached referrers of ", repo.Name(), "@", subject);
      auto list = ParseReferrersIndex(*text, what, limits_.max_listing_bytes, [&](size_t n) {
        return CountPage(use, text->size(), n, what);
      });
      if (list.ok()) {
        out.artifacts = std::move(*list);
        out.from_cache = true;
        return out;
      }
      if (absl::IsResourceExhausted(list.status())) {
        out.status = list.status();
        return out;
      }
    }
  }
  using Mode = RegistryClient::ReferrersMode;
  Mode mode = client_->referrers_mode(repo);
  absl::StatusOr<std::vector<ArtifactDescriptor>> list;
  if (mode == Mode::kTagSchema) {
    out.via_tag_schema = true;
    list = ViaTagSchema(repo, subject, types, creds, use);
  } else if (mode == Mode::kApi) {
    bool supported = false;
    list = ViaApi(repo, subject, types, creds, use, supported);
    if (list.ok() && !supported) {
      // The API went away (a registry replaced behind its name).
      client_->set_referrers_mode(repo, Mode::kTagSchema);
      out.via_tag_schema = true;
      list = ViaTagSchema(repo, subject, types, creds, use);
    }
  } else {
    // A repository not yet known: the API and the tag schema are asked at
    // once, so a registry without the API (docker-registry, most mirrors)
    // costs no round trip more than one with it. The price is one GET of
    // the sha256-<hex> tag per subject on a registry with the API, the first
    // time its repository is seen within referrers_ttl.
    ListingUse tag_use;
    absl::StatusOr<std::vector<ArtifactDescriptor>> by_tag;
    std::thread tag_probe([&] { by_tag = ViaTagSchema(repo, subject, types, creds, tag_use); });
    bool supported = false;
    list = ViaApi(repo, subject, types, creds, use, supported);
    tag_probe.join();
    if (list.ok()) {
      client_->set_referrers_mode(repo, supported ? Mode::kApi : Mode::kTagSchema);
      if (!supported) {
        out.via_tag_schema = true;
        list = std::move(by_tag);
      }
    }
  }
  if (!list.ok()) {
    out.status = list.status();
    return out;
  }
  out.artifacts = std::move(*list);
  if (cache != nullptr) {
    // Written only when a read would take it back (the same cap): the text
    // written is ours, and may be longer than what the registry sent.
    std::string json = ReferrersIndexJson(out.artifacts);
    if (json.size() <= limits_.max_listing_bytes) cache->PutRecord(key, json).IgnoreError();
  }
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
  // Every subject at once, even while it is not known whether this
  // repository has the referrers API: a probe first and the others after it
  // would cost a cold pull a round trip more (a few extra requests are the
  // cheaper price).
  std::atomic<size_t> next{0};
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
  auto manifest = FetchArtifactManifest(repo, artifact, creds);
  if (!manifest.ok()) return manifest.status();
  return FetchArtifactLayers(repo, *manifest, layer_types, creds);
}

absl::StatusOr<ArtifactManifest> ReferrersClient::FetchArtifactManifest(
    const Reference& repo, const ArtifactDescriptor& artifact, const Credentials* creds) {
  std::string what = absl::StrCat("artifact ", repo.Name(), "@", artifact.digest);
  size_t used = 0;
  if (auto room = ArtifactRoom(used, what); !room.ok()) return room.status();
  auto manifest = client_->FetchManifest(repo, artifact.digest, creds, deadline_);
  if (!manifest.ok()) return manifest.status();
  if (absl::Status s = CountArtifactBytes(used, manifest->bytes.size(), what); !s.ok()) return s;
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
  ArtifactManifest out;
  out.digest = artifact.digest;
  out.manifest_bytes = manifest->bytes.size();
  out.artifact_type = Str(root, "artifactType");
  simdjson::dom::element config;
  if (out.artifact_type.empty() && root["config"].get(config) == simdjson::SUCCESS) {
    out.artifact_type = Str(config, "mediaType");
  }
  simdjson::dom::element subject;
  if (root["subject"].get(subject) == simdjson::SUCCESS) out.subject = Str(subject, "digest");
  out.annotations = ReadAnnotations(root);
  for (simdjson::dom::element layer : layers) {
    ArtifactLayerDescriptor l;
    l.media_type = Str(layer, "mediaType");
    l.digest = Str(layer, "digest");
    if (int64_t size = 0; layer["size"].get_int64().get(size) == simdjson::SUCCESS) l.size = size;
    l.annotations = ReadAnnotations(layer);
    out.layers.push_back(std::move(l));
  }
  return out;
}

absl::StatusOr<Artifact> ReferrersClient::FetchArtifactLayers(
    const Reference& repo, const ArtifactManifest& manifest,
    const std::vector<std::string>& layer_types, const Credentials* creds) {
  std::string what = absl::StrCat("artifact ", repo.Name(), "@", manifest.digest);
  size_t used = manifest.manifest_bytes;  // bytes this artifact holds: manifest, layers kept
  int kept = 0;
  Artifact out;
  out.digest = manifest.digest;
  out.artifact_type = manifest.artifact_type;
  out.subject = manifest.subject;
  out.annotations = manifest.annotations;
  size_t index = 0;
  for (const ArtifactLayerDescriptor& layer : manifest.layers) {
    std::string where = absl::StrCat(what, ": layers[", index++, "]");
    if (!Wanted(layer_types, layer.media_type)) continue;
    ArtifactLayer l;
    l.media_type = layer.media_type;
    l.digest = layer.digest;
    if (absl::Status s = ValidateDigest(l.digest); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".digest: ", s.message()));
    }
    if (absl::Status s = TakeLayer(kept, where); !s.ok()) return s;
    auto room = ArtifactRoom(used, where);
    if (!room.ok()) return room.status();
    if (layer.size && (*layer.size < 0 || static_cast<uint64_t>(*layer.size) > room->bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(where, " (", l.digest, "): declared size ",
                                                       *layer.size, " bytes is over ", room->cap));
    }
    l.annotations = layer.annotations;
    auto bytes = client_->FetchBlob(repo, l.digest, room->bytes, creds, deadline_);
    if (!bytes.ok()) {
      absl::Status s(bytes.status().code(), absl::StrCat(where, ": ", bytes.status().message()));
      return absl::IsResourceExhausted(s)
                 ? absl::ResourceExhaustedError(absl::StrCat(s.message(), " (", room->cap, ")"))
                 : s;
    }
    if (absl::Status s = CountArtifactBytes(used, bytes->size(), where); !s.ok()) return s;
    l.bytes = std::move(*bytes);
    out.layers.push_back(std::move(l));
  }
  return out;
}

}  // namespace imgsel::registry
