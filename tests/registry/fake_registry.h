// An in-memory registry for tests: manifests, blobs, tags and (optionally)
// the referrers API, on a FakeServer (loopback, port 0), with auth modes and
// injectable faults. Shared by the registry and selector tests.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "simdjson.h"
#include "tests/registry/fake_server.h"
#include "tests/registry/test_images.h"

namespace imgsel::registry::testing {

// Serves manifests, blobs and (optionally) referrers from memory.
class FakeRegistry {
 public:
  enum class Auth { kNone, kBasic, kBearer };

  FakeRegistry() : server_([this](const FakeRequest& r) { return Handle(r); }) {}

  void AddManifest(const Blob& m, const std::string& tag = "") {
    absl::MutexLock lock(&mu_);
    manifests_[m.digest()] = m;
    if (!tag.empty()) tags_[tag] = m.digest();
  }
  void AddBlob(const Blob& b) {
    absl::MutexLock lock(&mu_);
    blobs_[b.digest()] = b.bytes;
  }
  void set_referrers_api(bool on) { referrers_api_ = on; }
  void set_filters_applied(bool on) { filters_applied_ = on; }
  void set_auth(Auth a) { auth_ = a; }
  // Answers instead of the registry when it returns a response.
  void set_fault(std::function<std::optional<FakeResponse>(const FakeRequest&)> f) {
    absl::MutexLock lock(&mu_);
    fault_ = std::move(f);
  }
  std::string host() const { return absl::StrCat("127.0.0.1:", server_.port()); }
  std::string url() const { return server_.url(); }
  std::vector<FakeRequest> requests() const { return server_.requests(); }
  int Count(const std::string& path_part) const {
    int n = 0;
    for (const FakeRequest& r : server_.requests()) n += absl::StrContains(r.target, path_part);
    return n;
  }

 private:
  FakeResponse Handle(const FakeRequest& req) {
    std::function<std::optional<FakeResponse>(const FakeRequest&)> fault;
    {
      absl::MutexLock lock(&mu_);
      fault = fault_;
    }
    if (fault) {
      if (auto r = fault(req)) return *r;
    }
    std::string path = req.Path();
    if (path == "/token" && req.method == "POST") {
      if (!absl::StrContains(req.body, "grant_type=refresh_token") ||
          !absl::StrContains(req.body, "refresh_token=R1")) {
        return {401, {}, "{}"};
      }
      return {200, {}, R"({"access_token":"T1","expires_in":300})"};
    }
    if (path == "/token") {
      if (req.Header("authorization") != "Basic " + absl::Base64Escape("alice:pw")) {
        return {401, {}, "{}"};
      }
      return {200, {{"Content-Type", "application/json"}}, R"({"token":"T1","expires_in":300})"};
    }
    if (auth_ == Auth::kBearer && req.Header("authorization") != "Bearer T1") {
      return {401,
              {{"WWW-Authenticate",
                absl::StrCat("Bearer realm=\"", url(), "/token\",service=\"fake\"")}},
              R"({"errors":[{"code":"UNAUTHORIZED"}]})"};
    }
    if (auth_ == Auth::kBasic &&
        req.Header("authorization") != "Basic " + absl::Base64Escape("alice:pw")) {
      return {401, {{"WWW-Authenticate", "Basic realm=\"fake\""}}, ""};
    }
    absl::MutexLock lock(&mu_);
    if (path == "/v2/") return {200, {}, "{}"};
    size_t at;
    if ((at = path.find("/manifests/")) != std::string::npos) {
      std::string ref = path.substr(at + 11);
      if (tags_.count(ref)) ref = tags_[ref];
      auto it = manifests_.find(ref);
      if (it == manifests_.end()) return {404, {}, R"({"errors":[{"code":"MANIFEST_UNKNOWN"}]})"};
      return {200,
              {{"Content-Type", it->second.media_type}, {"Docker-Content-Digest", it->first}},
              it->second.bytes};
    }
    if ((at = path.find("/blobs/")) != std::string::npos) {
      auto it = blobs_.find(path.substr(at + 7));
      if (it == blobs_.end()) return {404, {}, R"({"errors":[{"code":"BLOB_UNKNOWN"}]})"};
      return {200, {{"Content-Type", "application/octet-stream"}}, it->second};
    }
    if ((at = path.find("/referrers/")) != std::string::npos) {
      if (!referrers_api_) return {404, {}, "404 page not found"};
      return Referrers(path.substr(at + 11), req.target);
    }
    return {404, {}, ""};
  }

  FakeResponse Referrers(const std::string& subject, const std::string& target)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string filter;
    if (size_t q = target.find("artifactType="); q != std::string::npos) {
      filter = target.substr(q + 13);
      filter = filter.substr(0, filter.find('&'));  // a mirror's request also has ?ns=
    }
    std::vector<std::string> descs;
    for (const auto& [digest, m] : manifests_) {
      simdjson::dom::parser p;
      simdjson::dom::element root;
      if (p.parse(m.bytes).get(root) != simdjson::SUCCESS) continue;
      std::string_view s, type;
      if (root["subject"]["digest"].get_string().get(s) != simdjson::SUCCESS || s != subject) {
        continue;
      }
      if (root["artifactType"].get_string().get(type) != simdjson::SUCCESS) type = "";
      if (filters_applied_ && !filter.empty() && type != filter) continue;
      descs.push_back(m.Descriptor(absl::StrCat(",\"artifactType\":\"", std::string(type), "\"")));
    }
    FakeResponse r{200,
                   {{"Content-Type", "application/vnd.oci.image.index.v1+json"}},
                   absl::StrCat("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image."
                                "index.v1+json\",\"manifests\":[",
                                absl::StrJoin(descs, ","), "]}")};
    if (filters_applied_ && !filter.empty())
      r.headers.push_back({"OCI-Filters-Applied", "artifactType"});
    return r;
  }

  std::atomic<bool> referrers_api_{true};
  std::atomic<bool> filters_applied_{true};
  std::atomic<Auth> auth_{Auth::kNone};
  absl::Mutex mu_;
  std::map<std::string, Blob> manifests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> tags_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> blobs_ ABSL_GUARDED_BY(mu_);
  std::function<std::optional<FakeResponse>(const FakeRequest&)> fault_ ABSL_GUARDED_BY(mu_);
  FakeServer server_;  // last: stops before the state above goes away
};

// An artifact manifest pointing at `subject`, with one layer.
struct TestArtifact {
  Blob layer, config, manifest;
};

inline TestArtifact MakeArtifact(const Blob& subject, const std::string& type,
                                 const std::string& content, const std::string& layer_type,
                                 const std::string& created) {
  TestArtifact a;
  a.layer = {layer_type, content};
  a.config = {"application/vnd.oci.empty.v1+json", "{}"};
  a.manifest = {
      "application/vnd.oci.image.manifest.v1+json",
      absl::StrCat("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image."
                   "manifest.v1+json\",\"artifactType\":\"",
                   type, "\",\"config\":", a.config.Descriptor(), ",\"layers\":[",
                   a.layer.Descriptor(), "],\"subject\":", subject.Descriptor(),
                   ",\"annotations\":{\"org.opencontainers.image.created\":\"", created, "\"}}")};
  return a;
}

}  // namespace imgsel::registry::testing
