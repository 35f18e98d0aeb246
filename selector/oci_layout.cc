#include "selector/oci_layout.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "matcher/index.h"
#include "oci/digest.h"
#include "oci/file_read.h"

namespace imgsel {
namespace {

constexpr absl::string_view kScheme = "oci-layout:";
constexpr size_t kMaxLayoutIndexBytes = 4 << 20;
constexpr absl::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

}  // namespace

absl::StatusOr<OciLayoutRef> ParseOciLayoutRef(absl::string_view source) {
  if (!absl::StartsWith(source, kScheme)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", source, "\": expected oci-layout:DIR[:TAG|@DIGEST]"));
  }
  absl::string_view rest = source.substr(kScheme.size());
  OciLayoutRef ref;
  if (size_t at = rest.rfind('@'); at != absl::string_view::npos) {
    ref.digest = std::string(rest.substr(at + 1));
    if (auto st = ValidateDigest(ref.digest); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", source, "\": ", st.message()));
    }
    rest = rest.substr(0, at);
  } else if (size_t colon = rest.rfind(':'); colon != absl::string_view::npos) {
    ref.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (ref.tag.empty())
      return absl::InvalidArgumentError(absl::StrCat("\"", source, "\": empty tag"));
  }
  if (rest.empty())
    return absl::InvalidArgumentError(absl::StrCat("\"", source, "\": no directory"));
  ref.dir = std::string(rest);
  return ref;
}

absl::StatusOr<std::string> ReadLayoutBlob(absl::string_view dir, absl::string_view digest,
                                           size_t max_bytes, int64_t size) {
  if (auto st = ValidateDigest(digest); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": blob ", digest, ": ", st.message()));
  }
  size_t colon = digest.find(':');
  std::string blob_path =
      absl::StrCat(dir, "/blobs/", digest.substr(0, colon), "/", digest.substr(colon + 1));
  auto blob = ReadFileBounded(blob_path, max_bytes);
  if (!blob.ok()) return blob.status();
  if (size >= 0 && static_cast<int64_t>(blob->size()) != size) {
    return absl::DataLossError(absl::StrCat(blob_path, ": size ", blob->size(),
                                            " does not match the descriptor's ", size));
  }
  if (auto st = VerifyDigest(*blob, digest); !st.ok()) {
    return absl::DataLossError(absl::StrCat(blob_path, ": content does not match digest ", digest,
                                            " (", st.message(), ")"));
  }
  return blob;
}

absl::StatusOr<LayoutDocument> ReadOciLayout(const OciLayoutRef& ref, size_t max_bytes) {
  std::string index_path = absl::StrCat(ref.dir, "/index.json");
  auto index_bytes = ReadFileBounded(index_path, kMaxLayoutIndexBytes);
  if (!index_bytes.ok()) return index_bytes.status();
  auto index = ParseIndex(*index_bytes, index_path);
  if (!index.ok()) return index.status();
  if (index->kind == DocumentKind::kManifest) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": expected an image index"));
  }
  const Descriptor* chosen = nullptr;
  std::string known_tags;
  for (const Descriptor& d : index->manifests) {
    std::optional<absl::string_view> name = d.Annotation(kRefNameAnnotation);
    if (name) absl::StrAppend(&known_tags, known_tags.empty() ? "" : ", ", *name);
    bool hit = (!ref.tag.empty() && name && *name == ref.tag) ||
               (!ref.digest.empty() && d.digest == ref.digest);
    if (hit) {
      chosen = &d;
      break;
    }
  }
  if (ref.tag.empty() && ref.digest.empty()) {
    if (index->manifests.size() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": ", index->manifests.size(),
                       " entries; name one with oci-layout:DIR:TAG (tags: ", known_tags, ")"));
    }
    chosen = &index->manifests[0];
  }
  if (!chosen) {
    return absl::NotFoundError(
        absl::StrCat(index_path, ": no entry ",
                     ref.tag.empty() ? ref.digest : absl::StrCat("tagged \"", ref.tag, "\""),
                     known_tags.empty() ? "" : absl::StrCat(" (tags: ", known_tags, ")")));
  }
  if (!chosen->invalid_reason.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": ", chosen->invalid_reason));
  }
  if (chosen->size > static_cast<int64_t>(max_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": ", chosen->digest, " is ",
                                                   chosen->size, " bytes, over the limit of ",
                                                   max_bytes));
  }
  auto blob = ReadLayoutBlob(ref.dir, chosen->digest, max_bytes, chosen->size);
  if (!blob.ok()) return blob.status();
  LayoutDocument doc;
  doc.bytes = *std::move(blob);
  doc.digest = std::string(chosen->digest);
  doc.media_type = std::string(chosen->media_type);
  return doc;
}

}  // namespace imgsel
