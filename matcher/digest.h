// Digest syntax: the one check of "algorithm:encoded" imgsel applies to every
// digest it reads (index entries, references, artifacts).
//
//   sha256:<64 lowercase hex>    sha512:<128 lowercase hex>
//
// Pure functions, thread-safe.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace imgsel {

// True when ValidateDigest would say OK; cheap enough for every index entry.
bool IsValidDigest(absl::string_view digest);

// OK, or InvalidArgument saying what is wrong ("not a sha256 digest: 63 hex digits").
absl::Status ValidateDigest(absl::string_view digest);

}  // namespace imgsel
