// Digests: the one parser of "algorithm:encoded" and the one verifier of
// bytes against a digest, for every digest imgsel reads (index entries,
// references, artifacts, cached blobs, files of an image layout).
//
//   sha256:<64 lowercase hex>    sha512:<128 lowercase hex>
//
// Syntax is checked without hashing (IsValidDigest runs for every entry of
// every index); content is checked by hashing (OpenSSL libcrypto). A blob is
// hashed once: VerifyContent returns a VerifiedDigest, which the code that
// later stores or hands on the bytes (the cache, say) takes instead of
// hashing them again.
//
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imgsel {

// True when ValidateDigest would say OK; cheap enough for every index entry.
bool IsValidDigest(absl::string_view digest);

// OK, or InvalidArgument saying what is wrong ("not a sha256 digest: 63 hex digits").
absl::Status ValidateDigest(absl::string_view digest);

// "sha256:<64 hex>" of the bytes.
std::string Sha256Digest(absl::string_view bytes);

// OK when `bytes` hash to `digest`; InvalidArgument for a malformed digest,
// DataLoss "digest mismatch: expected sha256:…, got sha256:…" otherwise.
absl::Status VerifyDigest(absl::string_view bytes, absl::string_view digest);

// A digest the bytes it travels with were hashed to: made only by
// VerifyContent and HashContent, so holding one means the hash was done.
// It names its bytes by size as a guard: a VerifiedDigest presented with
// bytes of another size is not taken (VerifiedDigest::Covers).
class VerifiedDigest {
 public:
  const std::string& digest() const { return digest_; }
  size_t size() const { return size_; }
  // True when these are (by size) the bytes that were hashed to digest().
  bool Covers(absl::string_view bytes) const { return bytes.size() == size_; }

 private:
  friend absl::StatusOr<VerifiedDigest> VerifyContent(absl::string_view, absl::string_view);
  friend VerifiedDigest HashContent(absl::string_view);
  VerifiedDigest(std::string digest, size_t size) : digest_(std::move(digest)), size_(size) {}
  std::string digest_;
  size_t size_ = 0;
};

// VerifyDigest, keeping the proof: the digest, or VerifyDigest's error.
absl::StatusOr<VerifiedDigest> VerifyContent(absl::string_view bytes, absl::string_view digest);

// The sha256 digest of bytes that arrived without one to check against.
VerifiedDigest HashContent(absl::string_view bytes);

}  // namespace imgsel
