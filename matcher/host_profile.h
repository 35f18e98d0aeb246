// The host profile: everything the matcher knows about a host.
//
// One JSON document, printed by `imgsel probe`, read by `--host-profile`, so a
// profile saved on one node can be evaluated anywhere:
//
//   {"platform": {"os": "linux", "architecture": "amd64", "variant": "v3",
//                 "os.version": "...", "os.features": [...]},
//    "features": ["avx2", ...],
//    "nfd": {"flags":      {"cpu.cpuid": {"elements": {"AVX2": {}}}},
//            "attributes": {"kernel.version": {"elements": {"major": "6"}}},
//            "instances":  {"pci.device": {"elements": [{"attributes": {...}}]}}}}
//
// `nfd` is Node Feature Discovery's Features document (what `nfd export
// features` prints), with NFD's names. `features` accepts any spelling the
// alias table knows; the parsed profile holds canonical names, levels expanded.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "matcher/platform.h"

namespace imgsel {

struct NfdFeatures {
  // Feature name ("cpu.cpuid") -> element names ("AVX2").
  std::map<std::string, std::set<std::string>> flags;
  // Feature name ("kernel.version") -> element name -> value.
  std::map<std::string, std::map<std::string, std::string>> attributes;
  // Feature name ("pci.device") -> instances, each attribute name -> value.
  std::map<std::string, std::vector<std::map<std::string, std::string>>> instances;

  bool empty() const { return flags.empty() && attributes.empty() && instances.empty(); }
};

struct HostProfile {
  Platform platform;  // normalised; variant is the detected level (amd64 v3, arm64 v8.2)
  std::set<std::string, std::less<>> features;  // canonical names
  NfdFeatures nfd;
};

// Limits for a profile document from outside.
inline constexpr size_t kMaxHostProfileBytes = 16 << 20;

// Parses a profile; `source` names it in errors ("node-a.json: /platform/os:
// expected a string"). A key nobody reads is an error with the closest known
// key ("did you mean"), at every level imgsel defines (top, platform, nfd).
// The variant must be one its architecture has: amd64 v1-v4, arm64 the
// versions of containerd's table, arm v5-v8. A feature name no table knows
// is kept as written, lowercased; a malformed one is an error.
absl::StatusOr<HostProfile> ParseHostProfile(absl::string_view json, absl::string_view source);

// The profile as JSON (pretty when indent > 0); ParseHostProfile reads it back.
std::string HostProfileToJson(const HostProfile& profile, int indent = 2);

}  // namespace imgsel
