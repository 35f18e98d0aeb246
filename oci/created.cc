#include "oci/created.h"

namespace imgsel {
namespace {

// The spelling image-spec defines first: it wins when both hold a time.
constexpr absl::string_view kCreatedKeys[] = {kCreatedAnnotation,
                                              "oci.opencontainers.image.created"};

}  // namespace

std::optional<absl::Time> ParseCreatedAnnotation(absl::string_view key, absl::string_view value) {
  if (key != kCreatedKeys[0] && key != kCreatedKeys[1]) return std::nullopt;
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, value, &t, &err)) return std::nullopt;
  return t;
}

std::optional<absl::Time> ArtifactCreated(
    absl::FunctionRef<std::optional<absl::string_view>(absl::string_view key)> annotation) {
  for (absl::string_view key : kCreatedKeys) {
    const std::optional<absl::string_view> value = annotation(key);
    if (!value) continue;
    if (auto t = ParseCreatedAnnotation(key, *value)) return t;
  }
  return std::nullopt;
}

std::optional<absl::Time> ArtifactCreated(const std::map<std::string, std::string>& annotations) {
  return ArtifactCreated([&](absl::string_view key) -> std::optional<absl::string_view> {
    auto it = annotations.find(std::string(key));
    if (it == annotations.end()) return std::nullopt;
    return absl::string_view(it->second);
  });
}

std::string FormatCreated(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace imgsel
