// Platforms: what an index entry runs on, and which entries a host accepts.
//
// An OCI platform is os/architecture[/variant] plus, for Windows, os.version
// and os.features, plus Proposal E's `features` (CPU/host features the entry
// requires). Names come in many spellings; containerd normalises them first:
//
//   os            lowercase; "macos" -> darwin
//   architecture  i386 -> 386 (variant dropped); x86_64, x86-64 -> amd64;
//                 aarch64 -> arm64; armhf -> arm/v7; armel -> arm/v6
//   variant       amd64 "v1" -> ""; arm64 "8"/"v8"/"v8.0" -> "",
//                 arm64 "9"/"9.0"/"v9.0" -> "v9"; arm "" / "7" -> v7,
//                 arm "5"/"6"/"8" -> v5/v6/v8
//
// A host accepts an ordered vector of platforms (containerd's platformVector):
//
//   amd64/vN   vN, vN-1, ..., v1 (== ""), then 386
//   arm64/v9.x v9.x ... v9, v8.min(x+5,9) ... v8, then arm/v8 ... arm/v5
//   arm64/v8.x v8.x ... v8, then arm/v8 ... arm/v5
//   arm/vN     vN ... v5
//
// arm64 follows containerd's table exactly: host variants v8, v8.0-v8.9,
// v9, v9.0-v9.7; there is no v8.10, so no host runs it; an arm64 host of a
// variant outside the table runs nothing (containerd/platforms 1.0, the
// generation of containerd 2.1 and later).
//
// An entry's platform rank is its position in that vector; smaller is better.
// Windows (containerd's checkWindowsHostAndContainerCompat): an entry's
// os.version, when set and the host's is known, must have the host's major
// and minor; a host before Windows Server 2022 (build 20348) runs its own
// build only, a later one every build from the newest LTSC release before it
// up to its own. os.features of an entry must be a subset of the host's
// (containerd since late 2024; on a Windows host `win32k` is not counted).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace imgsel {

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

// A list of strings viewing storage someone else owns (a ParsedIndex's).
using StringList = absl::Span<const absl::string_view>;

// An entry's platform as written in an index (not normalised): views into
// the index's storage, valid while the ParsedIndex (index.h) that holds it.
struct PlatformView {
  absl::string_view os;
  absl::string_view architecture;
  absl::string_view variant;
  absl::string_view os_version;
  StringList os_features;
  // Proposal E: mandatory features as written in the entry.
  StringList features;

  // An owning copy.
  Platform ToPlatform() const;
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

// Why a host cannot run an entry.
enum class PlatformMiss { kNone, kPlatform, kOsVersion, kOsFeatures };

// The ordered set of platforms a host accepts, built once per host.
// Thread-safe after construction (const use only).
class PlatformMatcher {
 public:
  explicit PlatformMatcher(const Platform& host);

  // Position of `entry` (normalised or not) in the host's vector, or nullopt
  // when the host cannot run it.
  std::optional<int> Rank(const Platform& entry) const;
  // The same for an entry as the index wrote it; allocation-free in the
  // common case (no os.features). `why`, when given, says what did not match.
  std::optional<int> Rank(const PlatformView& entry, PlatformMiss* why = nullptr) const;

  // The entry's os.features the host lacks, sorted, each once.
  std::vector<absl::string_view> MissingOsFeatures(const PlatformView& entry) const;

  // The vector itself, normalised, best first.
  const std::vector<Platform>& vector() const { return vector_; }
  const Platform& host() const { return host_; }
  // Never the same for two matchers built in this process (a copy keeps
  // it: same host, same answers), so a cache of Rank answers can be keyed
  // by it without holding the matcher.
  uint64_t id() const { return id_; }

 private:
  bool OsVersionMatches(absl::string_view entry_version) const;

  uint64_t id_;
  Platform host_;
  std::vector<Platform> vector_;
};

}  // namespace imgsel
