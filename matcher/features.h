// Proposal E features: one alias table from every common spelling of a CPU
// feature to one canonical lowercase name.
//
// Canonical names are the Linux /proc/cpuinfo flag names, except where the
// kernel's name is historical: SSE3 is "sse3" (cpuinfo: pni), LZCNT is
// "lzcnt" (cpuinfo: abm), SHA is "sha_ni". Accepted spellings:
//
//   source              example          canonical
//   /proc/cpuinfo       pni, sse4_1      sse3, sse4_1
//   GCC -m / builtin    -msse4.1, bmi    sse4_1, bmi1
//   Go x/sys/cpu        HasSSE41         sse4_1
//   NFD (klauspost)     SSE4, FMA3       sse4_1, fma
//   x86-64 psABI        LAHF-SAHF        lahf_lm
//   arm64 HWCAP/GCC     dotprod, lse     asimddp, atomics
//
// The psABI levels expand to their feature lists:
//   x86-64-v2  cx16 lahf_lm popcnt sse3 sse4_1 sse4_2 ssse3 (+ baseline)
//   x86-64-v3  v2 + avx avx2 bmi1 bmi2 f16c fma lzcnt movbe xsave
//   x86-64-v4  v3 + avx512f avx512bw avx512cd avx512dq avx512vl
//
// Implications. Having a feature guarantees others, as the ISA defines it:
// GCC's -m options for x86 (-mavx512f implies -mavx2, which implies -mavx,
// which implies -msse4.2 and -mxsave, ... down to -msse), GCC's aarch64
// extension dependencies for arm64 (sve2 -> sve -> asimdhp -> asimd -> fp).
// What an entry *needs* is the closure: its names, levels expanded, and
// everything they imply. The same closure makes a host that has avx512f
// have avx2. One table (features.cc) holds names, aliases and implications;
// the probe, the matcher and `validate` all read it.
//
// Platform levels are believed: an amd64 host of variant v3 has all of
// x86-64-v3; an arm64 host of variant v8.2 has what Armv8.0-8.2 make
// mandatory (fp asimd; crc32 atomics asimdrdm; dcpop), v9.x what v8.(x+5)
// does plus sve2 and what it implies (PlatformLevelFeatures). The probe
// names an arm64 host's version from the same table (HighestArm64Variant).
//
// A well-formed name is 1-64 characters of [A-Za-z0-9._+/-] (surrounding
// blanks ignored). Anything else - "", control characters, a sentence - is
// nobody's feature: no table knows it and no host has it.
//
// Lookup is case-insensitive and thread-safe (the tables are immutable).
#pragma once

#include <bitset>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace imgsel {

// A set of canonical features, one bit per row of the table.
inline constexpr size_t kFeatureBits = 256;
using FeatureSet = std::bitset<kFeatureBits>;

// Longer names are malformed (no feature name of any table comes close).
inline constexpr size_t kMaxFeatureNameBytes = 64;

bool IsWellFormedFeatureName(absl::string_view name);

// Everything `name` needs: its canonical features (a level's list for a
// level) and all they imply. nullptr when no table knows the name or it is
// malformed. The set is static: valid for the life of the program.
const FeatureSet* FeatureNeed(absl::string_view name);

// The bit of a canonical name, or nullopt.
std::optional<size_t> FeatureBit(absl::string_view canonical);

// `set` with everything its features imply.
FeatureSet FeatureClosure(const FeatureSet& set);

// The canonical names of the bits set, in table order.
std::vector<absl::string_view> FeatureNames(const FeatureSet& set);

// What a host platform's level guarantees, closed under implication: amd64
// "" (v1) to v4, arm64 "" (v8) and v8.1-v8.9, v9-v9.7 (normalised names, as
// NormalizePlatform leaves them). Empty for other architectures and for
// variants no table has.
FeatureSet PlatformLevelFeatures(absl::string_view architecture, absl::string_view variant);

// The newest arm64 version ("" for v8, "v8.2", "v9.1") whose mandatory
// features `has` (closed under implication) all holds.
std::string HighestArm64Variant(const FeatureSet& has);

// The canonical names `name` stands for: one name, or a level's list.
// Empty when no table knows the name.
std::vector<std::string> CanonicalFeatures(absl::string_view name);

// The same without allocating in the common case: views of static storage,
// valid for the life of the program. Empty when no table knows the name.
absl::Span<const absl::string_view> CanonicalFeatureViews(absl::string_view name);

// The canonical name of a single feature, or nullopt (levels are not single).
std::optional<std::string> CanonicalFeature(absl::string_view name);

// Every canonical feature name the table knows, for the probe and docs.
std::span<const absl::string_view> KnownCanonicalFeatures();

// The name NFD's cpu.cpuid feature uses for a canonical feature (klauspost/cpuid
// spelling: "sse4_1" -> "SSE4", "fma" -> "FMA3", "pclmulqdq" -> "CLMUL"); for
// names without a special spelling, the canonical name in upper case.
std::string NfdCpuidName(absl::string_view canonical);

// psABI level (2, 3 or 4) feature lists, baseline included; empty otherwise.
std::vector<std::string> X86LevelFeatures(int level);

}  // namespace imgsel
