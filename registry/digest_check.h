// The one content check: the bytes a registry (or the cache) hands us must
// hash to the digest that named them. sha256 and sha512 (OpenSSL libcrypto);
// the digest's syntax is ValidateDigest's (matcher/digest.h).
//
// Pure functions, thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace imgsel::registry {

// "sha256:<64 hex>" of the bytes.
std::string Sha256Digest(absl::string_view bytes);

// OK when `bytes` hash to `digest`; InvalidArgument for a malformed digest,
// DataLoss "digest mismatch: expected sha256:…, got sha256:…" otherwise.
absl::Status VerifyDigest(absl::string_view bytes, absl::string_view digest);

}  // namespace imgsel::registry
