// Platforms: what an index entry runs on, and which entries a host accepts.
//
// An OCI platform is os/architecture[/variant] plus, for Windows, os.version
// and os.features, plus Proposal E's `features` (CPU/host features the entry
// requires). Names come in many spellings; containerd normalises them first:
//
//   os            lowercase; "macos" -> darwin
//   architecture  i386 -> 386 (variant dropped); x86_64, x86-64 -> amd64;
//                 aarch64 -> arm64; armhf -> arm/v7; armel -> arm/v6
//   variant       amd64 "v1" -> ""; arm64 "8"/"v8" -> ""; arm "" / "7" -> v7,
//                 arm "5"/"6"/"8" -> v5/v6/v8
//
// A host accepts an ordered vector of platforms (containerd's platformVector):
//
//   amd64/vN   vN, vN-1, ..., v1 (== ""), then 386
//   arm64/v9.x v9.x ... v9, v8.(x+5) ... v8, then arm/v8 ... arm/v5
//   arm64/v8.x v8.x ... v8, then arm/v8 ... arm/v5
//   arm/vN     vN ... v5
//
// An entry's platform rank is its position in that vector; smaller is better.
// Windows: an entry's os.version, when set, must equal the host's in
// major.minor.build. os.features of an entry must be a subset of the host's.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imgsel {

struct PlatformView;  // index.h

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string os_version;
  std::vector<std::string> os_features;
  // Proposal E: mandatory features as written in the entry (not normalised).
  std::vector<std::string> features;

  bool operator==(const Platform&) const = default;
};

// containerd's Normalize: os, architecture and variant spellings, os.features
// sorted and de-duplicated. `features` is left alone (see features.h).
Platform NormalizePlatform(Platform p);

// "os/arch[/variant]" as containerd formats it ("linux/amd64/v3").
std::string FormatPlatform(const Platform& p);
// The same for an entry as the index wrote it, normalised first (equal to
// FormatPlatform(NormalizePlatform(view.ToPlatform()))) without building a
// Platform.
std::string FormatPlatform(const PlatformView& view);
// The same, handed to `append` in pieces, with no string of its own.
void AppendPlatform(const PlatformView& view, absl::FunctionRef<void(absl::string_view)> append);

// Parses "os/arch[/variant]" (each part required except the variant) and
// normalises it. Errors name the specifier.
absl::StatusOr<Platform> ParsePlatformSpecifier(absl::string_view specifier);

// The ordered set of platforms a host accepts, built once per host.
// Thread-safe after construction (const use only).
class PlatformMatcher {
 public:
  explicit PlatformMatcher(const Platform& host);

  // Position of `entry` (normalised or not) in the host's vector, or nullopt
  // when the host cannot run it.
  std::optional<int> Rank(const Platform& entry) const;
  // The same for an entry as the index wrote it; allocation-free in the
  // common case (no os.features).
  std::optional<int> Rank(const PlatformView& entry) const;

  // The vector itself, normalised, best first.
  const std::vector<Platform>& vector() const { return vector_; }
  const Platform& host() const { return host_; }

 private:
  bool OsVersionMatches(absl::string_view entry_version) const;

  Platform host_;
  std::vector<Platform> vector_;
};

}  // namespace imgsel
