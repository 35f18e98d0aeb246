// Pushing content for `imgsel attach`: a blob (unless the registry has it)
// by a monolithic upload, and a manifest; only to endpoints with "push".
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "oci/digest.h"
#include "registry/client.h"
#include "registry/client_call.h"

namespace imgsel::registry {

absl::StatusOr<std::string> RegistryClient::PushBlob(const Reference& repo, absl::string_view bytes,
                                                     const Credentials* creds,
                                                     absl::Time deadline) {
  std::string digest = Sha256Digest(bytes);
  Call head;
  head.deadline = deadline;
  head.method = "HEAD";
  head.path = absl::StrCat(repo.repository, "/blobs/", digest);
  head.capability = kCapPush;
  head.push = true;
  auto exists = Exchange(repo, head, creds);
  if (!exists.ok()) return exists.status();
  if (exists->status == 200) return digest;

  Call start;
  start.deadline = deadline;
  start.method = "POST";
  start.path = absl::StrCat(repo.repository, "/blobs/uploads/");
  start.capability = kCapPush;
  start.push = true;
  auto started = Exchange(repo, start, creds);
  if (!started.ok()) return started.status();
  const std::string* location = started->Header("location");
  if (started->status != 202 || location == nullptr) {
    if (started->status == 202) {
      return absl::FailedPreconditionError(
          absl::StrCat("POST ", start.last_url, ": upload started without a Location"));
    }
    return StatusFromHttp(*started, absl::StrCat("POST ", start.last_url));
  }
  Call put;
  put.deadline = deadline;
  put.method = "PUT";
  std::string url = ResolveLocation(start.last_url, *location);
  put.absolute_url =
      absl::StrCat(url, absl::StrContains(url, '?') ? "&" : "?", "digest=", PercentEncode(digest));
  put.headers.push_back("Content-Type: application/octet-stream");
  put.body = std::string(bytes);
  put.capability = kCapPush;
  put.push = true;
  auto done = Exchange(repo, put, creds);
  if (!done.ok()) return done.status();
  if (done->status != 201 && done->status != 204) {
    return StatusFromHttp(*done, absl::StrCat("PUT ", put.last_url, " (blob ", digest, ")"));
  }
  return digest;
}

absl::StatusOr<std::string> RegistryClient::PushManifest(
    const Reference& repo, absl::string_view media_type, absl::string_view bytes,
    absl::string_view tag_or_digest, const Credentials* creds, absl::Time deadline) {
  const VerifiedDigest verified = HashContent(bytes);
  const std::string& digest = verified.digest();
  Call put;
  put.deadline = deadline;
  put.method = "PUT";
  put.path = absl::StrCat(repo.repository, "/manifests/",
                          tag_or_digest.empty() ? absl::string_view(digest) : tag_or_digest);
  put.headers.push_back(absl::StrCat("Content-Type: ", media_type));
  put.body = std::string(bytes);
  put.capability = kCapPush;
  put.push = true;
  auto done = Exchange(repo, put, creds);
  if (!done.ok()) return done.status();
  if (done->status != 201 && done->status != 200 && done->status != 204) {
    return StatusFromHttp(*done, absl::StrCat("PUT ", put.last_url));
  }
  if (options_.cache != nullptr)
    options_.cache->PutBlob(repo.Name(), verified, bytes).IgnoreError();
  return digest;
}

}  // namespace imgsel::registry
