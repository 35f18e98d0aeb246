// The creation time of an image or artifact, the one rule: the
// org.opencontainers.image.created annotation (image-spec), read as RFC 3339,
// or the oci.opencontainers.image.created spelling some documents use when
// the first is absent or not a time. It orders artifacts of a kind (newest
// first, compat_eval.h's NewestOfEachKind) and is what `imgsel attach` writes.
//
// Pure functions, thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace imgsel {

// The annotation image-spec defines, and the one imgsel writes.
inline constexpr absl::string_view kCreatedAnnotation = "org.opencontainers.image.created";

// The time one annotation records when it is a creation time: RFC 3339 in
// org.opencontainers.image.created (or the oci.opencontainers.image.created
// spelling); nullopt for any other key or a bad value.
std::optional<absl::Time> ParseCreatedAnnotation(absl::string_view key, absl::string_view value);

// An artifact's creation time: org.opencontainers.image.created when it
// holds RFC 3339, else oci.opencontainers.image.created; nullopt when
// neither does. `annotation(key)` looks a key up in whatever holds them.
std::optional<absl::Time> ArtifactCreated(
    absl::FunctionRef<std::optional<absl::string_view>(absl::string_view key)> annotation);
std::optional<absl::Time> ArtifactCreated(const std::map<std::string, std::string>& annotations);

// `t` as the annotation's value: RFC 3339 in UTC, whole seconds.
std::string FormatCreated(absl::Time t);

}  // namespace imgsel
