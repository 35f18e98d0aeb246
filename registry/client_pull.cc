// Pulling content: a tag resolved, a manifest or blob fetched by digest -
// the cache first, then the registry; capped while it downloads, hashed
// once against its digest, cached with that proof (client.h, "guarantees").
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

absl::StatusOr<std::string> RegistryClient::FetchBlob(const Reference& repo,
                                                      absl::string_view digest, size_t max_bytes,
                                                      const Credentials* creds,
                                                      absl::Time deadline) {
  if (max_bytes == 0) max_bytes = options_.max_blob_bytes;
  if (absl::Status s = ValidateDigest(digest); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("blob digest \"", digest.substr(0, 140), "\": ", s.message()));
  }
  std::string what = absl::StrCat("blob ", repo.Name(), "@", digest);
  if (options_.cache != nullptr) {
    if (auto bytes = options_.cache->GetBlob(repo.Name(), digest)) {
      if (bytes->size() > max_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat(what, ": ", bytes->size(), " bytes, over the limit of ", max_bytes));
      }
      return *std::move(bytes);
    }
  }
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
