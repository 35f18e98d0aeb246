// Reading an image index from an OCI image layout on disk.
//
//   oci-layout:DIR            the only entry of DIR/index.json
//   oci-layout:DIR:TAG        the entry annotated org.opencontainers.image.ref.name=TAG
//   oci-layout:DIR@DIGEST     the entry with that digest
//
// The entry is followed to its blob (DIR/blobs/<alg>/<hex>), which is checked
// against the entry's digest and size before use. Every read is bounded.
// Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imgsel {

struct OciLayoutRef {
  std::string dir;
  std::string tag;     // empty when none
  std::string digest;  // empty when none
};

// Parses "oci-layout:DIR[:TAG|@DIGEST]"; InvalidArgument otherwise.
absl::StatusOr<OciLayoutRef> ParseOciLayoutRef(absl::string_view source);

struct LayoutDocument {
  std::string bytes;       // the index (or manifest) the reference names, verified
  std::string digest;      // its digest
  std::string media_type;  // as index.json's entry declares it
};

// The blob `digest` of the layout in `dir` (DIR/blobs/<alg>/<hex>), at most
// `max_bytes`, checked against `size` (when not negative) and the digest
// before it is returned.
absl::StatusOr<std::string> ReadLayoutBlob(absl::string_view dir, absl::string_view digest,
                                           size_t max_bytes, int64_t size = -1);

absl::StatusOr<LayoutDocument> ReadOciLayout(const OciLayoutRef& ref, size_t max_bytes = 4 << 20);

}  // namespace imgsel
