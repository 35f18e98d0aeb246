// Pulling content: a tag resolved, a manifest or blob fetched by digest -
// the cache first, then the registry; capped while it downloads, hashed
// once against its digest, cached with that proof (client.h, "guarantees").
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "oci/digest.h"
#include "registry/client.h"
#include "registry/client_call.h"

namespace imgsel::registry {

absl::StatusOr<Manifest> RegistryClient::GetManifest(const Reference& repo,
                                                     absl::string_view reference,
                                                     absl::string_view digest,
                                                     const Credentials* creds,
                                                     absl::Time deadline) {
  Call call;
  call.deadline = deadline;
  call.path = absl::StrCat(repo.repository, "/manifests/", reference);
  call.headers.push_back(absl::StrCat("Accept: ", kManifestAccept));
  call.max_bytes = options_.max_manifest_bytes;
  call.capability = digest.empty() ? kCapResolve : kCapPull;
  auto resp = Exchange(repo, call, creds);
  std::string what = absl::StrCat("manifest ", repo.Name(), "@", reference);
  if (!resp.ok()) {
    if (absl::IsResourceExhausted(resp.status())) {
      return absl::ResourceExhaustedError(absl::StrCat(what, ": larger than the manifest limit of ",
                                                       options_.max_manifest_bytes, " bytes"));
    }
    return resp.status();
  }
  if (resp->status != 200) return StatusFromHttp(*resp, absl::StrCat("GET ", call.last_url));
  Manifest m;
  m.bytes = std::move(resp->body);
  // Hashed once: against the digest asked for or the one the registry
  // named, or (naming none) to learn it; the cache takes the proof.
  absl::string_view expected = digest;
  if (const std::string* d = resp->Header("docker-content-digest");
      expected.empty() && d != nullptr && ValidateDigest(*d).ok()) {
    expected = *d;
  }
  absl::StatusOr<VerifiedDigest> verified =
      expected.empty() ? HashContent(m.bytes) : VerifyContent(m.bytes, expected);
  if (!verified.ok()) {
    return absl::DataLossError(
        absl::StrCat(what, " from ", call.last_url, ": ", verified.status().message()));
  }
  m.digest = verified->digest();
  m.media_type = MediaTypeFromContentType(resp->Header("content-type"));
  if (options_.cache != nullptr) {
    options_.cache->PutBlob(repo.Name(), *verified, m.bytes).IgnoreError();
  }
  return m;
}

absl::StatusOr<Manifest> RegistryClient::FetchManifest(const Reference& repo,
                                                       absl::string_view digest,
                                                       const Credentials* creds,
                                                       absl::Time deadline) {
  if (absl::Status s = ValidateDigest(digest); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest digest \"", digest.substr(0, 140), "\": ", s.message()));
  }
  if (options_.cache != nullptr) {
    if (auto bytes = options_.cache->GetBlob(repo.Name(), digest);
        bytes && bytes->size() <= options_.max_manifest_bytes) {
      Manifest m;  // media_type empty: the document's own, read where it is parsed
      m.digest = std::string(digest);
      m.bytes = std::move(*bytes);
      return m;
    }
  }
  return GetManifest(repo, digest, digest, creds, deadline);
}

absl::StatusOr<Manifest> RegistryClient::Resolve(const Reference& ref, const Credentials* creds,
                                                 absl::Time deadline) {
  if (!ref.digest.empty()) return FetchManifest(ref, ref.digest, creds, deadline);
  // One GET of the tag: its body is what a HEAD would have named (a HEAD
  // then a GET costs a second round trip on every cold pull; an index is a
  // few KiB, so a warm pull gains nothing from asking for the digest alone).
  auto m = GetManifest(ref, ref.tag, "", creds, deadline);
  if (!m.ok()) {
    return absl::Status(m.status().code(),
                        absl::StrCat("resolving ", ref.String(), ": ", m.status().message()));
  }
  return m;
}

// One fetch of a blob under way (client.h, single flight). Its members are
// guarded by the client's flights_mu_.
struct RegistryClient::BlobFlight {
  size_t max_bytes = 0;  // the first caller's limit and deadline: a failure
  absl::Time deadline;   // they explain is not shared with a waiter
  int waiting = 0;       // callers waiting for this fetch
  bool done = false;
  absl::StatusOr<std::string> outcome;  // set with `done` when someone waits
};

int RegistryClient::blob_fetch_waiters() const {
  absl::MutexLock lock(&flights_mu_);
  return blob_fetch_waiters_;
}

absl::StatusOr<std::string> RegistryClient::FetchBlob(const Reference& repo,
                                                      absl::string_view digest, size_t max_bytes,
                                                      const Credentials* creds,
                                                      absl::Time deadline) {
  if (max_bytes == 0) max_bytes = options_.max_blob_bytes;
  if (absl::Status s = ValidateDigest(digest); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("blob digest \"", digest.substr(0, 140), "\": ", s.message()));
  }
  const std::string what = absl::StrCat("blob ", repo.Name(), "@", digest);
  auto over_limit = [&](size_t size) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": ", size, " bytes, over the limit of ", max_bytes));
  };
  if (options_.cache != nullptr) {
    if (auto bytes = options_.cache->GetBlob(repo.Name(), digest)) {
      if (bytes->size() > max_bytes) return over_limit(bytes->size());
      return *std::move(bytes);
    }
  }
  const std::string key = absl::StrCat(repo.Name(), "@", digest);
  std::shared_ptr<BlobFlight> flight;
  {
    absl::MutexLock lock(&flights_mu_);
    auto [it, first] = blob_flights_.try_emplace(key);
    if (first) {
      it->second = flight = std::make_shared<BlobFlight>();
      flight->max_bytes = max_bytes;
      flight->deadline = deadline;
    } else {
      const std::shared_ptr<BlobFlight> other = it->second;  // alive past its erasure
      ++other->waiting;
      ++blob_fetch_waiters_;
      const bool done = flights_mu_.AwaitWithDeadline(absl::Condition(&other->done), deadline);
      --blob_fetch_waiters_;
      --other->waiting;
      if (!done) {
        return absl::DeadlineExceededError(absl::StrCat(
            what, ": the deadline passed while waiting for another request's fetch of it"));
      }
      const absl::StatusOr<std::string>& outcome = other->outcome;
      if (outcome.ok()) {
        if (outcome->size() > max_bytes) return over_limit(outcome->size());
        return *outcome;
      }
      // The first caller's smaller limit or earlier deadline says nothing
      // about this caller's: it fetches the blob itself (below, alone).
      const bool own_making =
          (absl::IsResourceExhausted(outcome.status()) && max_bytes > other->max_bytes) ||
          (absl::IsDeadlineExceeded(outcome.status()) && deadline > other->deadline);
      if (!own_making) return outcome.status();
    }
  }
  if (flight == nullptr) return DownloadBlob(repo, digest, max_bytes, creds, deadline);

  absl::StatusOr<std::string> outcome = DownloadBlob(repo, digest, max_bytes, creds, deadline);
  absl::MutexLock lock(&flights_mu_);
  blob_flights_.erase(key);  // later callers find the cache, or fetch anew
  flight->done = true;
  // Copied only for callers that wait; none can join once it is erased.
  if (flight->waiting > 0) flight->outcome = outcome;
  return outcome;
}

absl::StatusOr<std::string> RegistryClient::DownloadBlob(const Reference& repo,
                                                         absl::string_view digest, size_t max_bytes,
                                                         const Credentials* creds,
                                                         absl::Time deadline) {
  const std::string what = absl::StrCat("blob ", repo.Name(), "@", digest);
  Call call;
  call.deadline = deadline;
  call.path = absl::StrCat(repo.repository, "/blobs/", digest);
  call.max_bytes = max_bytes;
  auto resp = Exchange(repo, call, creds);
  if (!resp.ok()) {
    if (absl::IsResourceExhausted(resp.status())) {
      return absl::ResourceExhaustedError(
          absl::StrCat(what, ": larger than the limit of ", max_bytes, " bytes"));
    }
    return resp.status();
  }
  if (resp->status != 200) return StatusFromHttp(*resp, absl::StrCat("GET ", call.last_url));
  absl::StatusOr<VerifiedDigest> verified = VerifyContent(resp->body, digest);
  if (!verified.ok())
    return absl::DataLossError(absl::StrCat(what, ": ", verified.status().message()));
  if (options_.cache != nullptr) {
    options_.cache->PutBlob(repo.Name(), *verified, resp->body).IgnoreError();
  }
  return std::move(resp->body);
}

}  // namespace imgsel::registry
