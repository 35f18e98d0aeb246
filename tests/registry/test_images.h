// Building test content: small images, indexes and artifact manifests, as
// JSON text plus the blobs they name.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "oci/digest.h"

namespace imgsel::registry::testing {

struct Blob {
  std::string media_type;
  std::string bytes;
  std::string digest() const { return Sha256Digest(bytes); }
  std::string Descriptor(const std::string& extra = "") const {
    return absl::StrCat("{\"mediaType\":\"", media_type, "\",\"digest\":\"", digest(),
                        "\",\"size\":", bytes.size(), extra, "}");
  }
};

// A one-layer image manifest for an architecture, with its blobs.
struct TestImage {
  Blob config, layer, manifest;
};

inline TestImage MakeImage(const std::string& arch) {
  TestImage img;
  img.config = {
      "application/vnd.oci.image.config.v1+json",
      absl::StrCat("{\"architecture\":\"", arch,
                   "\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}")};
  img.layer = {"application/vnd.oci.image.layer.v1.tar", absl::StrCat("layer for ", arch)};
  img.manifest = {
      "application/vnd.oci.image.manifest.v1+json",
      absl::StrCat(
          "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
          "\"config\":",
          img.config.Descriptor(), ",\"layers\":[", img.layer.Descriptor(), "]}")};
  return img;
}

inline Blob MakeIndex(const std::vector<std::pair<std::string, const TestImage*>>& entries) {
  std::vector<std::string> descs;
  for (const auto& [arch, img] : entries) {
    descs.push_back(img->manifest.Descriptor(
        absl::StrCat(",\"platform\":{\"os\":\"linux\",\"architecture\":\"", arch, "\"}")));
  }
  return {
      "application/vnd.oci.image.index.v1+json",
      absl::StrCat("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
                   "\"manifests\":[",
                   absl::StrJoin(descs, ","), "]}")};
}

}  // namespace imgsel::registry::testing
